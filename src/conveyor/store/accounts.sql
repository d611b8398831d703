-- Account queries (tenants, users, memberships, sessions, API keys, audit log), once
-- for both databases: :named parameters, no casts, no dialect functions, every time
-- a parameter. conveyor.store.queries.load_portable adapts them to each dialect.
-- Only whole-line comments: they are dropped before the parameters are rewritten.

-- name: insert_tenant
INSERT INTO tenants (id, name, status, allow_signup, created_at)
VALUES (:id, :name, :status, :allow_signup, :created_at)
RETURNING *

-- name: get_tenant
SELECT * FROM tenants WHERE id = :id

-- name: list_tenants
SELECT * FROM tenants ORDER BY id

-- name: set_tenant_status
UPDATE tenants SET status = :status WHERE id = :id RETURNING *

-- name: delete_tenant_artifacts
DELETE FROM artifacts WHERE tenant_id = :tenant_id

-- name: delete_tenant_attempts
DELETE FROM job_attempts WHERE tenant_id = :tenant_id

-- name: delete_tenant_events
DELETE FROM events WHERE tenant_id = :tenant_id

-- name: delete_tenant_jobs
DELETE FROM jobs WHERE tenant_id = :tenant_id

-- name: delete_tenant_queues
DELETE FROM queues WHERE tenant_id = :tenant_id

-- name: delete_tenant_workers
DELETE FROM workers WHERE tenant_id = :tenant_id

-- name: delete_tenant_refresh_tokens
DELETE FROM refresh_tokens WHERE tenant_id = :tenant_id

-- name: delete_tenant_memberships
DELETE FROM memberships WHERE tenant_id = :tenant_id

-- name: delete_tenant_api_keys
DELETE FROM api_keys WHERE tenant_id = :tenant_id

-- name: delete_tenant_audit
DELETE FROM audit_log WHERE tenant_id = :tenant_id

-- name: delete_tenant_task_versions
DELETE FROM task_versions WHERE tenant_id = :tenant_id

-- name: delete_tenant_schedule_runs
DELETE FROM schedule_runs WHERE tenant_id = :tenant_id

-- name: delete_tenant_schedules
DELETE FROM schedules WHERE tenant_id = :tenant_id

-- name: delete_tenant_webhook_deliveries
DELETE FROM webhook_deliveries WHERE tenant_id = :tenant_id

-- name: delete_tenant_webhooks
DELETE FROM webhooks WHERE tenant_id = :tenant_id

-- name: delete_tenant
DELETE FROM tenants WHERE id = :tenant_id RETURNING id

-- name: usage_jobs_by_state
SELECT state, count(*) AS n
FROM jobs
WHERE tenant_id = :tenant_id AND created_at >= :since AND created_at < :until
GROUP BY state

-- name: insert_user
INSERT INTO users (id, email, name, password_hash, is_admin, time_zone, failed_logins,
                   locked_until, password_changed_at, created_at)
VALUES (:id, :email, :name, :password_hash, :is_admin, :time_zone, :failed_logins,
        :locked_until, :password_changed_at, :created_at)
RETURNING *

-- name: get_user
SELECT * FROM users WHERE id = :id

-- name: user_by_email
SELECT * FROM users WHERE email = :email

-- name: count_users
SELECT count(*) AS n FROM users

-- name: record_login_failure
UPDATE users SET failed_logins = :failed_logins, locked_until = :locked_until
WHERE id = :id
RETURNING id

-- name: record_login_success
UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = :id RETURNING id

-- name: set_password
UPDATE users SET password_hash = :password_hash, password_changed_at = :changed_at
WHERE id = :id
RETURNING id

-- name: upsert_membership
INSERT INTO memberships (tenant_id, user_id, role, created_at)
VALUES (:tenant_id, :user_id, :role, :created_at)
ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role
RETURNING *

-- name: get_membership
SELECT * FROM memberships WHERE tenant_id = :tenant_id AND user_id = :user_id

-- name: list_memberships
SELECT * FROM memberships WHERE user_id = :user_id ORDER BY tenant_id

-- name: list_members
SELECT u.*, m.tenant_id, m.user_id, m.role, m.created_at AS member_since
FROM memberships AS m
JOIN users AS u ON u.id = m.user_id
WHERE m.tenant_id = :tenant_id
ORDER BY u.email

-- name: lock_tenant
-- Taken first by a change that must keep an owner: such changes of one tenant then
-- run one after the other, and each sees the other's result.
UPDATE tenants SET status = status WHERE id = :tenant_id

-- name: change_role_keeping_an_owner
UPDATE memberships SET role = :role
WHERE tenant_id = :tenant_id AND user_id = :user_id
  AND (:role = 'owner' OR role <> 'owner' OR EXISTS (
        SELECT 1 FROM memberships AS other
        WHERE other.tenant_id = :tenant_id AND other.role = 'owner'
          AND other.user_id <> :user_id))
RETURNING *

-- name: delete_membership_keeping_an_owner
DELETE FROM memberships
WHERE tenant_id = :tenant_id AND user_id = :user_id
  AND (role <> 'owner' OR EXISTS (
        SELECT 1 FROM memberships AS other
        WHERE other.tenant_id = :tenant_id AND other.role = 'owner'
          AND other.user_id <> :user_id))
RETURNING user_id

-- name: insert_refresh_token
INSERT INTO refresh_tokens (id, family_id, user_id, tenant_id, token_hash, created_at,
                            expires_at, used_at, revoked_at)
VALUES (:id, :family_id, :user_id, :tenant_id, :token_hash, :created_at, :expires_at,
        :used_at, :revoked_at)

-- name: get_refresh_token
SELECT * FROM refresh_tokens WHERE id = :id

-- name: use_refresh_token
-- The compare-and-set that makes a refresh token single-use: of two concurrent
-- refreshes with one token, only one changes the row.
UPDATE refresh_tokens SET used_at = :now
WHERE id = :id AND used_at IS NULL AND revoked_at IS NULL AND expires_at > :now
RETURNING id

-- name: revoke_token_family
UPDATE refresh_tokens SET revoked_at = :now
WHERE family_id = :family_id AND revoked_at IS NULL
RETURNING used_at, expires_at

-- name: revoke_user_tokens
UPDATE refresh_tokens SET revoked_at = :now
WHERE user_id = :user_id AND revoked_at IS NULL
RETURNING used_at, expires_at

-- name: revoke_member_tokens
-- Only once the membership is gone (a refused removal keeps the sessions).
UPDATE refresh_tokens SET revoked_at = :now
WHERE user_id = :user_id AND tenant_id = :tenant_id AND revoked_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM memberships
                  WHERE tenant_id = :tenant_id AND user_id = :user_id)
RETURNING used_at, expires_at

-- name: insert_api_key
INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes, created_by,
                      created_at, last_used_at, revoked_at)
VALUES (:id, :tenant_id, :name, :prefix, :secret_hash, :scopes, :created_by, :created_at,
        :last_used_at, :revoked_at)
RETURNING *

-- name: api_key_by_prefix
SELECT * FROM api_keys WHERE prefix = :prefix

-- name: list_api_keys
SELECT * FROM api_keys WHERE tenant_id = :tenant_id ORDER BY created_at DESC, id DESC

-- name: revoke_api_key
-- Revoking twice keeps the first time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, :now)
WHERE tenant_id = :tenant_id AND id = :id
RETURNING *

-- name: touch_api_key
UPDATE api_keys SET last_used_at = :now WHERE id = :id

-- name: insert_audit
INSERT INTO audit_log (tenant_id, actor, action, target, detail, ip, created_at)
VALUES (:tenant_id, :actor, :action, :target, :detail, :ip, :now)
RETURNING *

-- name: list_audit
SELECT * FROM audit_log
WHERE tenant_id = :tenant_id AND id > :after_id AND created_at >= :since
ORDER BY id
LIMIT :limit

-- name: list_audit_all
SELECT * FROM audit_log
WHERE id > :after_id AND created_at >= :since
ORDER BY id
LIMIT :limit

-- name: prune_audit
DELETE FROM audit_log WHERE created_at < :before RETURNING id

-- name: list_signing_keys
SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC

-- name: stored_signing_key
-- For sealing what was kept before keys were sealed (conveyor.store.sealing).
SELECT kid AS id, secret AS stored FROM signing_keys

-- name: seal_signing_key
UPDATE signing_keys SET secret = :sealed_value WHERE kid = :id AND secret = :stored
RETURNING kid

-- name: insert_key_check
-- The first node or command to look records the value its key sealed.
INSERT INTO key_check (id, sealed, created_at) VALUES (1, :sealed, :now)
ON CONFLICT (id) DO NOTHING

-- name: get_key_check
SELECT sealed FROM key_check WHERE id = 1

-- name: reseal_key_check
-- After a change of key: sealed with the new one by the first node to get there.
UPDATE key_check SET sealed = :sealed_value WHERE id = 1 AND sealed = :stored
RETURNING id

-- name: insert_signing_key
INSERT INTO signing_keys (kid, secret, created_at) VALUES (:kid, :secret, :now)
