-- Conveyor schema, version 1 (SQLite). Times are UTC seconds since the epoch (REAL).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  REAL NOT NULL
);

INSERT INTO tenants (id, name, created_at) VALUES ('default', 'Default', (julianday('now') - 2440587.5) * 86400.0);

CREATE TABLE queues (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    concurrency INTEGER,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    task              TEXT NOT NULL,
    queue             TEXT NOT NULL,
    state             TEXT NOT NULL,
    priority          INTEGER NOT NULL,
    run_at            REAL NOT NULL,
    payload           TEXT NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    timeout           REAL,
    message_id        TEXT,
    content_type      TEXT NOT NULL,
    content_encoding  TEXT NOT NULL,
    key               TEXT,
    tags              TEXT NOT NULL DEFAULT '[]',
    assignee          TEXT,
    immediate         INTEGER NOT NULL DEFAULT 0,
    lease_expires_at  REAL,
    worker_id         TEXT,
    result            TEXT,
    error             TEXT,
    progress          REAL,
    progress_message  TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    started_at        REAL,
    finished_at       REAL
);

-- Claims walk this index in claim order and touch nothing else.
CREATE INDEX jobs_claimable ON jobs (tenant_id, queue, priority, run_at, id)
    WHERE state = 'available';
CREATE INDEX jobs_claimable_urgent ON jobs (tenant_id, queue, priority, run_at, id)
    WHERE state = 'available' AND (priority = 0 OR immediate = 1);
CREATE INDEX jobs_waiting ON jobs (run_at) WHERE state IN ('scheduled', 'retryable');
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_running_by_queue ON jobs (tenant_id, queue) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_message_id ON jobs (tenant_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX jobs_by_state ON jobs (tenant_id, state, queue, id);
CREATE INDEX jobs_by_key ON jobs (tenant_id, key) WHERE key IS NOT NULL;

CREATE TABLE job_attempts (
    job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    tenant_id    TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    started_at   REAL NOT NULL,
    finished_at  REAL,
    outcome      TEXT,
    error        TEXT,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    job_id      INTEGER,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant_id, id);
CREATE INDEX events_by_job ON events (job_id, id) WHERE job_id IS NOT NULL;

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    path        TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX artifacts_by_job ON artifacts (job_id);

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    hostname      TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    queues        TEXT NOT NULL,
    concurrency   INTEGER NOT NULL,
    started_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL
);
