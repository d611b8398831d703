-- Webhook queries, once for both databases: :named parameters, no casts, no dialect
-- functions, every time a parameter. conveyor.store.queries.load_portable adapts them
-- to each dialect. Only whole-line comments: they are dropped before the parameters
-- are rewritten.

-- name: insert_webhook
INSERT INTO webhooks (tenant_id, url, event_types, queues, tasks, enabled, description,
                      secret, last_event_id, created_at, updated_at)
VALUES (:tenant_id, :url, :event_types, :queues, :tasks, :enabled, :description,
        :secret, :cursor, :now, :now)
RETURNING *

-- name: latest_event
-- Where a new Subscription starts: after the tenant's latest event.
SELECT COALESCE(MAX(id), 0) AS id FROM events WHERE tenant_id = :tenant_id

-- name: get_webhook
SELECT * FROM webhooks WHERE tenant_id = :tenant_id AND id = :id

-- name: list_webhooks
SELECT * FROM webhooks WHERE tenant_id = :tenant_id ORDER BY id

-- name: update_webhook
-- Enabling a disabled Subscription forgets its failures (the right-hand sides read the
-- row as it was).
UPDATE webhooks
SET url = :url, event_types = :event_types, queues = :queues, tasks = :tasks,
    enabled = :enabled, description = :description, updated_at = :now,
    failures = CASE WHEN :enabled AND NOT enabled THEN 0 ELSE failures END,
    disabled_reason = CASE WHEN :enabled THEN '' ELSE disabled_reason END
WHERE tenant_id = :tenant_id AND id = :id
RETURNING *

-- name: rotate_secret
-- The right-hand sides read the row as it was: the old secret becomes the previous one.
UPDATE webhooks
SET previous_secret = secret, previous_secret_until = :until, secret = :secret,
    updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id
RETURNING *

-- name: stored_secret
-- For sealing what was kept before secrets were sealed (conveyor.store.sealing).
SELECT id, secret AS stored FROM webhooks

-- name: seal_secret
UPDATE webhooks SET secret = :sealed_value WHERE id = :id AND secret = :stored
RETURNING id

-- name: stored_previous_secret
SELECT id, previous_secret AS stored FROM webhooks

-- name: seal_previous_secret
UPDATE webhooks SET previous_secret = :sealed_value
WHERE id = :id AND previous_secret = :stored
RETURNING id

-- name: delete_webhook
DELETE FROM webhooks WHERE tenant_id = :tenant_id AND id = :id RETURNING id

-- name: enabled_webhooks
-- Every tenant's: the notifier serves them all.
SELECT * FROM webhooks WHERE enabled ORDER BY id

-- name: insert_delivery
INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_id, event_type, job_id, body,
                                state, next_attempt_at, window_start, created_at, updated_at)
VALUES (:tenant_id, :webhook_id, :event_id, :event_type, :job_id, :body,
        'pending', :now, :now, :now, :now)
ON CONFLICT (webhook_id, event_id) DO NOTHING

-- name: advance_cursor
-- Moves on only from the position read: a round that lost a race changes nothing.
UPDATE webhooks SET last_event_id = :cursor
WHERE id = :id AND last_event_id = :old_cursor
RETURNING id

-- name: due_deliveries
-- One Subscription's, so a busy one cannot fill another's turn. In order per job: a
-- delivery waits while an earlier one of the same job is pending (its id is smaller:
-- deliveries are made in event order). The earliest pending one of each job is found
-- by a lookup per row in webhook_deliveries_pending_by_job, a plan that stays cheap
-- with thousands pending whatever the statistics say (an anti-join did not).
SELECT d.* FROM webhook_deliveries AS d
WHERE d.webhook_id = :webhook_id AND d.state = 'pending' AND d.next_attempt_at <= :now
  AND (d.job_id IS NULL
       OR d.id = (SELECT MIN(e.id) FROM webhook_deliveries AS e
                  WHERE e.webhook_id = d.webhook_id AND e.job_id = d.job_id
                    AND e.state = 'pending'))
ORDER BY d.next_attempt_at, d.id
LIMIT :limit

-- name: next_attempt_at
SELECT MIN(d.next_attempt_at) AS next_attempt_at FROM webhook_deliveries AS d
JOIN webhooks AS w ON w.id = d.webhook_id
WHERE d.state = 'pending' AND w.enabled

-- name: record_attempt
UPDATE webhook_deliveries
SET state = :state, attempts = attempts + 1, next_attempt_at = :next_attempt_at,
    status_code = :status_code, duration_ms = :duration_ms, response = :response,
    error = :error, updated_at = :now
WHERE id = :id AND state = 'pending'
RETURNING id

-- name: reset_failures
UPDATE webhooks SET failures = 0 WHERE id = :id

-- name: count_failure
UPDATE webhooks SET failures = failures + 1 WHERE id = :id RETURNING failures

-- name: insert_disabled_event
-- Only while still enabled: a second node disabling it announces nothing new.
INSERT INTO events (tenant_id, job_id, type, data, created_at)
SELECT tenant_id, NULL, :type, :data, :now FROM webhooks WHERE id = :id AND enabled

-- name: disable_webhook
UPDATE webhooks SET enabled = :enabled, disabled_reason = :reason, updated_at = :now
WHERE id = :id AND enabled
RETURNING id

-- name: list_deliveries
SELECT * FROM webhook_deliveries
WHERE tenant_id = :tenant_id AND webhook_id = :webhook_id AND id < :before
ORDER BY id DESC
LIMIT :limit

-- name: get_delivery
SELECT * FROM webhook_deliveries
WHERE tenant_id = :tenant_id AND webhook_id = :webhook_id AND id = :id

-- name: redeliver
-- Sent again at once, with a fresh retry window; the attempts so far stay counted.
UPDATE webhook_deliveries
SET state = 'pending', next_attempt_at = :now, window_start = :now, updated_at = :now
WHERE tenant_id = :tenant_id AND webhook_id = :webhook_id AND id = :id
RETURNING *
