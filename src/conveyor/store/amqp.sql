-- RabbitMQ bridge queries, once for both databases: :named parameters, no casts, no
-- dialect functions. conveyor.store.queries.load_portable adapts them to each dialect.

-- name: insert_route
INSERT INTO amqp_routes (tenant_id, queue, task, job_queue, priority, enabled,
                         created_at, updated_at)
VALUES (:tenant_id, :queue, :task, :job_queue, :priority, :enabled, :now, :now)
RETURNING *

-- name: get_route
SELECT * FROM amqp_routes WHERE tenant_id = :tenant_id AND id = :id

-- name: list_routes
SELECT * FROM amqp_routes WHERE tenant_id = :tenant_id ORDER BY id

-- name: update_route
UPDATE amqp_routes
SET queue = :queue, task = :task, job_queue = :job_queue, priority = :priority,
    enabled = :enabled, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id
RETURNING *

-- name: delete_route
DELETE FROM amqp_routes WHERE tenant_id = :tenant_id AND id = :id RETURNING id

-- name: enabled_routes
-- Every tenant's: the consumer serves them all. A suspended tenant's messages wait.
SELECT r.* FROM amqp_routes AS r
JOIN tenants AS t ON t.id = r.tenant_id
WHERE r.enabled AND t.status = 'active'
ORDER BY r.id

-- name: count_message
-- One message's outcome; an empty error keeps the last one seen.
UPDATE amqp_routes
SET received = received + 1,
    accepted = accepted + :accepted,
    duplicates = duplicates + :duplicate,
    dead_lettered = dead_lettered + :dead_lettered,
    failed = failed + :failed,
    last_error = CASE WHEN :error = '' THEN last_error ELSE :error END,
    last_message_at = :now
WHERE id = :id

-- name: note_error
-- A route's consumer could not start (its queue refused the declaration, say).
UPDATE amqp_routes SET last_error = :error WHERE id = :id

-- name: failed_attempt
-- One more failed attempt at a message; the count so far.
INSERT INTO amqp_attempts (route_id, message_id, attempts, updated_at)
VALUES (:route_id, :message_id, 1, :now)
ON CONFLICT (route_id, message_id)
DO UPDATE SET attempts = amqp_attempts.attempts + 1, updated_at = :now
RETURNING attempts

-- name: forget_attempts
-- The message is settled (a job, a duplicate or a dead letter).
DELETE FROM amqp_attempts WHERE route_id = :route_id AND message_id = :message_id

-- name: job_with_message_id
SELECT id FROM jobs WHERE tenant_id = :tenant_id AND message_id = :message_id

-- name: start_cursor
-- A new publisher starts after the latest event: it announces what happens from now on.
INSERT INTO amqp_cursor (name, last_event_id, updated_at)
-- ("WHERE true" lets SQLite parse ON CONFLICT after SELECT.)
SELECT :name, COALESCE(MAX(id), 0), :now FROM events WHERE true
ON CONFLICT (name) DO NOTHING

-- name: read_cursor
SELECT last_event_id FROM amqp_cursor WHERE name = :name

-- name: advance_cursor
-- Moves on only from the position read: a round that lost a race changes nothing.
UPDATE amqp_cursor SET last_event_id = :cursor, updated_at = :now
WHERE name = :name AND last_event_id = :old_cursor
RETURNING name
