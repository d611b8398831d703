-- Conveyor schema, version 3 (PostgreSQL): users, roles, sessions, API keys, audit log.

ALTER TABLE tenants ADD COLUMN allow_signup boolean NOT NULL DEFAULT false;

CREATE TABLE users (
    id                   text PRIMARY KEY,
    email                text NOT NULL UNIQUE,
    name                 text NOT NULL,
    password_hash        text NOT NULL,
    is_admin             boolean NOT NULL DEFAULT false,
    time_zone            text NOT NULL DEFAULT 'UTC',
    failed_logins        integer NOT NULL DEFAULT 0,
    locked_until         timestamptz,
    password_changed_at  timestamptz NOT NULL,
    created_at           timestamptz NOT NULL
);

CREATE TABLE memberships (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    user_id     text NOT NULL REFERENCES users (id),
    role        text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE refresh_tokens (
    id          text PRIMARY KEY,
    family_id   text NOT NULL,
    user_id     text NOT NULL REFERENCES users (id),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    token_hash  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    tenant_id     text NOT NULL REFERENCES tenants (id),
    name          text NOT NULL,
    prefix        text NOT NULL UNIQUE,
    secret_hash   text NOT NULL,
    scopes        text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

-- tenant_id is not a reference: platform-wide entries use '*'.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    ip          text,
    created_at  timestamptz NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_by_time ON audit_log (created_at);

CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL
);
