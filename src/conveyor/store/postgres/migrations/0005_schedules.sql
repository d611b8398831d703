-- Conveyor schema, version 5 (PostgreSQL): schedules and the history of their firings.
-- The payload and the waiting fire times are JSON text: no query looks inside them.

CREATE TABLE schedules (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name            text NOT NULL,
    kind            text NOT NULL,
    cron            text NOT NULL DEFAULT '',
    timezone        text NOT NULL,
    interval_seconds double precision NOT NULL DEFAULT 0,
    anchor          timestamptz NOT NULL,
    task            text NOT NULL,
    payload         text NOT NULL DEFAULT '{}',
    queue           text,
    priority        smallint,
    assignee        text,
    enabled         boolean NOT NULL,
    start_at        timestamptz,
    end_at          timestamptz,
    jitter          double precision NOT NULL DEFAULT 0,
    description     text NOT NULL DEFAULT '',
    misfire         text NOT NULL,
    overlap         text NOT NULL,
    catchup_limit   integer NOT NULL,
    source          text NOT NULL,
    owner           text NOT NULL,
    revision        integer NOT NULL DEFAULT 1,
    next_fire_at    timestamptz,
    last_fire_at    timestamptz,
    last_job_id     bigint,
    pending         text NOT NULL DEFAULT '[]',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);
-- The scheduler's question: which enabled schedules are due (or hold waiting runs)?
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;
CREATE INDEX schedules_waiting ON schedules (id) WHERE pending <> '[]';

-- One row per fire time: the job it made, or why it made none. The primary key is
-- what makes a firing happen once, whichever node records it.
CREATE TABLE schedule_runs (
    tenant_id    text NOT NULL,
    schedule_id  bigint NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at      timestamptz NOT NULL,
    outcome      text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    job_id       bigint,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (schedule_id, fire_at)
);
CREATE INDEX schedule_runs_by_tenant ON schedule_runs (tenant_id, fire_at);
