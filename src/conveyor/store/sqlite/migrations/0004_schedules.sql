-- Conveyor schema, version 4 (SQLite): schedules and the history of their firings.
-- Times are UTC seconds since the epoch (REAL), booleans INTEGER, JSON as TEXT.

CREATE TABLE schedules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    cron            TEXT NOT NULL DEFAULT '',
    timezone        TEXT NOT NULL,
    interval_seconds REAL NOT NULL DEFAULT 0,
    anchor          REAL NOT NULL,
    task            TEXT NOT NULL,
    payload         TEXT NOT NULL DEFAULT '{}',
    queue           TEXT,
    priority        INTEGER,
    assignee        TEXT,
    enabled         INTEGER NOT NULL,
    start_at        REAL,
    end_at          REAL,
    jitter          REAL NOT NULL DEFAULT 0,
    description     TEXT NOT NULL DEFAULT '',
    misfire         TEXT NOT NULL,
    overlap         TEXT NOT NULL,
    catchup_limit   INTEGER NOT NULL,
    source          TEXT NOT NULL,
    owner           TEXT NOT NULL,
    revision        INTEGER NOT NULL DEFAULT 1,
    next_fire_at    REAL,
    last_fire_at    REAL,
    last_job_id     INTEGER,
    pending         TEXT NOT NULL DEFAULT '[]',
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    UNIQUE (tenant_id, name)
);
-- The scheduler's question: which enabled schedules are due (or hold waiting runs)?
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled;
CREATE INDEX schedules_waiting ON schedules (id) WHERE pending <> '[]';

-- One row per fire time: the job it made, or why it made none. The primary key is
-- what makes a firing happen once, whichever node records it.
CREATE TABLE schedule_runs (
    tenant_id    TEXT NOT NULL,
    schedule_id  INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at      REAL NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    job_id       INTEGER,
    created_at   REAL NOT NULL,
    PRIMARY KEY (schedule_id, fire_at)
);
CREATE INDEX schedule_runs_by_tenant ON schedule_runs (tenant_id, fire_at);
