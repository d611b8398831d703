-- Conveyor schema, version 3 (SQLite): versioned task settings, per tenant.
-- Each change to a tenant's settings for a task adds a row with the next version;
-- jobs record the version whose settings they took, attempts the version that ran.
-- Times are UTC seconds since the epoch (REAL), booleans INTEGER.

-- ON DELETE CASCADE: the versions belong to the tenant and nothing else refers to
-- them (delete_tenant also deletes them explicitly, like everything a tenant owns).
CREATE TABLE task_versions (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    queue         TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    timeout       REAL,
    immediate     INTEGER NOT NULL DEFAULT 0,
    description   TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

ALTER TABLE jobs ADD COLUMN task_version INTEGER;

ALTER TABLE job_attempts ADD COLUMN task_version INTEGER;
