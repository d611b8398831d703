-- Conveyor schema, version 1 (PostgreSQL).

CREATE TABLE tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    status      text NOT NULL DEFAULT 'active',
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tenants (id, name) VALUES ('default', 'Default');

CREATE TABLE queues (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    paused      boolean NOT NULL DEFAULT false,
    concurrency integer,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants (id),
    task              text NOT NULL,
    queue             text NOT NULL,
    state             text NOT NULL,
    priority          smallint NOT NULL,
    run_at            timestamptz NOT NULL,
    payload           jsonb NOT NULL,
    attempt           integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL,
    timeout           double precision,
    message_id        text,
    content_type      text NOT NULL,
    content_encoding  text NOT NULL,
    key               text,
    tags              jsonb NOT NULL DEFAULT '[]',
    assignee          text,
    immediate         boolean NOT NULL DEFAULT false,
    lease_expires_at  timestamptz,
    worker_id         text,
    result            jsonb,
    error             jsonb,
    progress          double precision,
    progress_message  text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz
);

-- Claims walk this index in claim order and touch nothing else.
CREATE INDEX jobs_claimable ON jobs (tenant_id, queue, priority, run_at, id)
    WHERE state = 'available';
CREATE INDEX jobs_claimable_urgent ON jobs (tenant_id, queue, priority, run_at, id)
    WHERE state = 'available' AND (priority = 0 OR immediate);
CREATE INDEX jobs_waiting ON jobs (run_at) WHERE state IN ('scheduled', 'retryable');
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_running_by_queue ON jobs (tenant_id, queue) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_message_id ON jobs (tenant_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX jobs_by_state ON jobs (tenant_id, state, queue, id);
CREATE INDEX jobs_by_key ON jobs (tenant_id, key) WHERE key IS NOT NULL;

CREATE TABLE job_attempts (
    job_id       bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    tenant_id    text NOT NULL,
    worker_id    text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    outcome      text,
    error        jsonb,
    PRIMARY KEY (job_id, attempt)
);

-- xid is the writing transaction: readers stop below the oldest open one, so an
-- event whose id was taken early but committed late is never skipped.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL,
    job_id      bigint,
    type        text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX events_by_tenant ON events (tenant_id, id);
CREATE INDEX events_by_job ON events (job_id, id) WHERE job_id IS NOT NULL;

CREATE TABLE artifacts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL,
    job_id      bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name        text NOT NULL,
    size        bigint NOT NULL,
    sha256      text NOT NULL,
    path        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX artifacts_by_job ON artifacts (job_id);

CREATE TABLE workers (
    id            text PRIMARY KEY,
    tenant_id     text NOT NULL,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    queues        jsonb NOT NULL,
    concurrency   integer NOT NULL,
    started_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL
);
