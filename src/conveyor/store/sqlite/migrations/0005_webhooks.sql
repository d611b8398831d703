-- Conveyor schema, version 5 (SQLite): outgoing webhooks (Subscriptions) and their
-- deliveries. Times are UTC seconds since the epoch (REAL), booleans INTEGER, JSON TEXT.
-- The signing secrets are stored as given (see docs/webhooks.md, "Secrets").

CREATE TABLE webhooks (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                   TEXT NOT NULL,
    event_types           TEXT NOT NULL DEFAULT '[]',
    queues                TEXT NOT NULL DEFAULT '[]',
    tasks                 TEXT NOT NULL DEFAULT '[]',
    enabled               INTEGER NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until REAL,
    last_event_id         INTEGER NOT NULL,
    failures              INTEGER NOT NULL DEFAULT 0,
    disabled_reason       TEXT NOT NULL DEFAULT '',
    created_at            REAL NOT NULL,
    updated_at            REAL NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, id);

-- One row per (Subscription, event): the primary key of the pair makes an event's
-- delivery be created once, whichever round or node reads it.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    job_id          INTEGER,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    window_start    REAL NOT NULL,
    status_code     INTEGER,
    duration_ms     INTEGER,
    response        TEXT NOT NULL DEFAULT '',
    error           TEXT NOT NULL DEFAULT '',
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    UNIQUE (webhook_id, event_id)
);
-- The notifier's question: which pending deliveries are due?
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- In order per job: is an earlier delivery of the same job still pending?
CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (webhook_id, job_id, id)
    WHERE state = 'pending';
