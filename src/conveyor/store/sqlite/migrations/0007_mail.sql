-- Conveyor schema, version 7 (SQLite): email notifications. Who created each job, the
-- summary preferences of the users, the mail rules of each tenant, the mail outbox and the
-- cursor of the mailer over the events. Times are UTC seconds since the epoch (REAL),
-- booleans INTEGER, JSON TEXT.

-- The email of the user who created the job (of the schedule owner for its firings), NULL for an
-- API key without a user.
ALTER TABLE jobs ADD COLUMN created_by TEXT;
-- The question of the daily summary: the jobs of one user over the last day in one tenant.
CREATE INDEX jobs_by_creator ON jobs (tenant_id, created_by, created_at)
    WHERE created_by IS NOT NULL;

-- A user without a row gets the defaults: a summary at 19:00 (users.time_zone).
CREATE TABLE mail_preferences (
    user_id          TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    summary_at       TEXT NOT NULL DEFAULT '19:00',
    summary_enabled  INTEGER NOT NULL DEFAULT 1,
    updated_at       REAL NOT NULL
);

CREATE TABLE mail_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope_kind  TEXT NOT NULL,
    scope_value TEXT NOT NULL,
    on_events   TEXT NOT NULL,
    recipients  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX mail_rules_by_tenant ON mail_rules (tenant_id, id);

-- One row per mail: the unique dedupe key makes each mail be queued once, whichever
-- round or node reads the event that asks for it.
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    dedupe_key      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    job_id          INTEGER,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    window_start    REAL NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    sent_at         REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX mail_outbox_by_tenant ON mail_outbox (tenant_id, id);
CREATE INDEX mail_outbox_by_job ON mail_outbox (job_id, recipient, id) WHERE state = 'pending';
-- The pruner's question: sent and failed mails by age.
CREATE INDEX mail_outbox_done ON mail_outbox (updated_at) WHERE state <> 'pending';

-- The position of the mailer in the events (one row): it starts after the events already
-- there.
CREATE TABLE mail_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id INTEGER NOT NULL
);
INSERT INTO mail_cursor (id, last_event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;
