-- Conveyor schema, version 2 (SQLite): users, roles, sessions, API keys, audit log.
-- Times are UTC seconds since the epoch (REAL), booleans INTEGER, JSON TEXT.

ALTER TABLE tenants ADD COLUMN allow_signup INTEGER NOT NULL DEFAULT 0;

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    email                TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    is_admin             INTEGER NOT NULL DEFAULT 0,
    time_zone            TEXT NOT NULL DEFAULT 'UTC',
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    locked_until         REAL,
    password_changed_at  REAL NOT NULL,
    created_at           REAL NOT NULL
);

CREATE TABLE memberships (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    token_hash  TEXT NOT NULL,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    used_at     REAL,
    revoked_at  REAL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    last_used_at  REAL,
    revoked_at    REAL
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

-- tenant_id is not a reference: platform-wide entries use '*'.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',
    ip          TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_by_time ON audit_log (created_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  REAL NOT NULL
);
