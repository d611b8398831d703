-- Mail queries (rules, outbox, the mailer's cursor, summary preferences and the daily
-- summary), once for both databases: :named parameters, no casts, no dialect
-- functions, every time a parameter. conveyor.store.queries.load_portable adapts them
-- to each dialect. Only whole-line comments: they are dropped before the parameters
-- are rewritten.

-- name: insert_rule
INSERT INTO mail_rules (tenant_id, scope_kind, scope_value, on_events, recipients,
                        created_by, created_at)
VALUES (:tenant_id, :scope_kind, :scope_value, :on_events, :recipients, :created_by, :now)
RETURNING *

-- name: get_rule
SELECT * FROM mail_rules WHERE tenant_id = :tenant_id AND id = :id

-- name: list_rules
SELECT * FROM mail_rules WHERE tenant_id = :tenant_id ORDER BY id

-- name: delete_rule
DELETE FROM mail_rules WHERE tenant_id = :tenant_id AND id = :id RETURNING id

-- name: all_rules
-- Every tenant's: the mailer serves them all.
SELECT * FROM mail_rules ORDER BY tenant_id, id

-- name: get_cursor
SELECT last_event_id FROM mail_cursor WHERE id = 1

-- name: advance_cursor
-- Moves on only from the position read: a round that lost a race changes nothing.
UPDATE mail_cursor SET last_event_id = :cursor
WHERE id = 1 AND last_event_id = :old_cursor
RETURNING id

-- name: insert_mail
INSERT INTO mail_outbox (tenant_id, dedupe_key, kind, job_id, recipient, subject,
                         text_body, html_body, state, next_attempt_at, window_start,
                         created_at, updated_at)
VALUES (:tenant_id, :dedupe_key, :kind, :job_id, :recipient, :subject,
        :text_body, :html_body, 'pending', :now, :now, :now, :now)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id

-- name: mail_exists
SELECT id FROM mail_outbox WHERE dedupe_key = :dedupe_key

-- name: due_mail
-- In order per job and address: a mail waits while an earlier one of the same job to the
-- same address is pending (the start mail goes before the finish mail).
-- The earliest pending one is found by a lookup per row in mail_outbox_by_job (an
-- anti-join could turn quadratic on a backlog).
SELECT m.* FROM mail_outbox AS m
WHERE m.state = 'pending' AND m.next_attempt_at <= :now
  AND (m.job_id IS NULL
       OR m.id = (SELECT MIN(e.id) FROM mail_outbox AS e
                  WHERE e.job_id = m.job_id AND e.recipient = m.recipient
                    AND e.state = 'pending'))
ORDER BY m.next_attempt_at, m.id
LIMIT :limit

-- name: next_attempt_at
SELECT MIN(next_attempt_at) AS next_attempt_at FROM mail_outbox WHERE state = 'pending'

-- name: claim_mail
-- Before a send: counts the attempt and keeps the mail out of every node's due list
-- until :lease_until. Only the node whose update returns the row sends it.
UPDATE mail_outbox
SET attempts = attempts + 1, next_attempt_at = :lease_until, updated_at = :now
WHERE id = :id AND state = 'pending' AND next_attempt_at <= :now
RETURNING id

-- name: record_attempt
-- After a send: the outcome of the attempt claim_mail counted.
UPDATE mail_outbox
SET state = :state, next_attempt_at = :next_attempt_at,
    last_error = :error, sent_at = :sent_at, updated_at = :now
WHERE id = :id AND state = 'pending'
RETURNING id

-- name: prune_outbox
-- Sent and failed mails kept long enough to look back on.
DELETE FROM mail_outbox WHERE state <> 'pending' AND updated_at < :before

-- name: list_outbox
SELECT * FROM mail_outbox
WHERE tenant_id = :tenant_id AND id < :before
ORDER BY id DESC
LIMIT :limit

-- name: get_preferences
SELECT u.time_zone, p.summary_at, p.summary_enabled
FROM users AS u LEFT JOIN mail_preferences AS p ON p.user_id = u.id
WHERE u.id = :user_id

-- name: set_time_zone
UPDATE users SET time_zone = :time_zone WHERE id = :user_id RETURNING id

-- name: upsert_preferences
INSERT INTO mail_preferences (user_id, summary_at, summary_enabled, updated_at)
VALUES (:user_id, :summary_at, :summary_enabled, :now)
ON CONFLICT (user_id) DO UPDATE
SET summary_at = :summary_at, summary_enabled = :summary_enabled, updated_at = :now

-- name: summary_recipients
-- Every member of every active tenant, with their preferences (none stored: the
-- defaults).
SELECT m.tenant_id, u.id AS user_id, u.email, u.time_zone,
       p.summary_at, p.summary_enabled
FROM memberships AS m
JOIN users AS u ON u.id = m.user_id
JOIN tenants AS t ON t.id = m.tenant_id
LEFT JOIN mail_preferences AS p ON p.user_id = u.id
WHERE t.status = 'active'
ORDER BY u.id, m.tenant_id

-- name: summary_jobs
-- The failures first: a summary lists only the first :limit jobs.
SELECT id, task, key, state, error, created_at FROM jobs
WHERE tenant_id = :tenant_id AND created_by = :created_by
  AND created_at >= :since AND created_at < :until
ORDER BY CASE WHEN state = 'discarded' THEN 0 ELSE 1 END, id
LIMIT :limit

-- name: summary_counts
SELECT state, COUNT(*) AS jobs FROM jobs
WHERE tenant_id = :tenant_id AND created_by = :created_by
  AND created_at >= :since AND created_at < :until
GROUP BY state

-- name: member_emails
-- The addresses ``owner`` may mail in a tenant: its current members'.
SELECT u.email FROM memberships AS m
JOIN users AS u ON u.id = m.user_id
WHERE m.tenant_id = :tenant_id

-- name: skip_stale_events
-- Moves the cursor past the events created before :before (mail was off for long).
UPDATE mail_cursor
SET last_event_id = (SELECT COALESCE(MAX(id), :old_cursor) FROM events
                     WHERE id > :old_cursor AND created_at < :before)
WHERE id = 1 AND last_event_id = :old_cursor
RETURNING last_event_id
