-- Conveyor schema, version 4 (PostgreSQL): versioned task settings, per tenant.
-- Each change to a tenant's settings for a task adds a row with the next version;
-- jobs record the version whose settings they took, attempts the version that ran.
-- The new columns are nullable without a default: adding them rewrites nothing.

-- ON DELETE CASCADE: the versions belong to the tenant and nothing else refers to
-- them (delete_tenant also deletes them explicitly, like everything a tenant owns).
CREATE TABLE task_versions (
    tenant_id     text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL,
    version       integer NOT NULL,
    queue         text NOT NULL,
    priority      smallint NOT NULL,
    max_attempts  integer NOT NULL,
    timeout       double precision,
    immediate     boolean NOT NULL DEFAULT false,
    description   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    created_by    text NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);

ALTER TABLE jobs ADD COLUMN task_version integer;

ALTER TABLE job_attempts ADD COLUMN task_version integer;
