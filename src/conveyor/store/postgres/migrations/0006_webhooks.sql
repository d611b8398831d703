-- Conveyor schema, version 6 (PostgreSQL): outgoing webhooks (Subscriptions) and their
-- deliveries. JSON is text: no query looks inside it.
-- The signing secrets are stored as given (see docs/webhooks.md, "Secrets").

CREATE TABLE webhooks (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id             text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                   text NOT NULL,
    event_types           text NOT NULL DEFAULT '[]',
    queues                text NOT NULL DEFAULT '[]',
    tasks                 text NOT NULL DEFAULT '[]',
    enabled               boolean NOT NULL,
    description           text NOT NULL DEFAULT '',
    secret                text NOT NULL,
    previous_secret       text,
    previous_secret_until timestamptz,
    last_event_id         bigint NOT NULL,
    failures              integer NOT NULL DEFAULT 0,
    disabled_reason       text NOT NULL DEFAULT '',
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

-- One row per (Subscription, event): the primary key of the pair makes an event's
-- delivery be created once, whichever round or node reads it.
CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL,
    webhook_id      bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        bigint NOT NULL,
    event_type      text NOT NULL,
    job_id          bigint,
    body            text NOT NULL,
    state           text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    window_start    timestamptz NOT NULL,
    status_code     integer,
    duration_ms     integer,
    response        text NOT NULL DEFAULT '',
    error           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (webhook_id, event_id)
);
-- The notifier's question: which pending deliveries are due?
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- In order per job: is an earlier delivery of the same job still pending?
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (webhook_id, job_id, id)
    WHERE state = 'pending';
