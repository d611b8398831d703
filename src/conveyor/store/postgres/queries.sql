-- Conveyor's hand-written queries for PostgreSQL. Parameters are %(named)s (psycopg).
-- Each section has a twin of the same name in ../sqlite/queries.sql. Where SQLite
-- needs several statements in one transaction, these are often one statement with
-- data-modifying CTEs: the state change, its attempt row, its events and the
-- LISTEN/NOTIFY wake-up commit together in one round trip.
-- Times are always parameters (the store's clock), never now().

-- name: insert_job
-- A whole batch in one statement, from a JSON array. Rows come back in input order
-- (ids are taken in ORDER BY ord); a row whose (tenant_id, message_id) exists is
-- skipped, and the store looks the first job up with jobs_by_message_ids.
WITH input AS (
    SELECT *
    FROM jsonb_to_recordset(%(batch)s::jsonb) AS i (
        tenant_id text, task text, queue text, state text, priority smallint,
        run_at timestamptz, payload jsonb, max_attempts int, timeout float8, message_id text,
        content_type text, content_encoding text, key text, tags jsonb, assignee text,
        immediate boolean, task_version int, created_by text, ord int)
),
inserted AS (
    INSERT INTO jobs (tenant_id, task, queue, state, priority, run_at, payload, max_attempts,
                      timeout, message_id, content_type, content_encoding, key, tags, assignee,
                      immediate, task_version, created_by, created_at, updated_at)
    SELECT tenant_id, task, queue, state, priority, run_at, payload, max_attempts,
           timeout, message_id, content_type, content_encoding, key, tags, assignee,
           immediate, task_version, created_by, %(now)s, %(now)s
    FROM input
    ORDER BY ord
    ON CONFLICT (tenant_id, message_id) WHERE message_id IS NOT NULL DO NOTHING
    RETURNING id, tenant_id, message_id, task, queue, state
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, %(event)s,
           jsonb_build_object('task', task, 'queue', queue, 'state', state), %(now)s
    FROM inserted
    ORDER BY id
),
notified AS (
    SELECT count(pg_notify('conveyor_jobs', k)) AS n
    FROM (SELECT DISTINCT tenant_id || ':' || queue AS k FROM inserted) AS keys
)
SELECT inserted.id, inserted.tenant_id, inserted.message_id
FROM inserted, notified
ORDER BY id

-- name: jobs_by_message_ids
-- The jobs of a JSON array of {tenant_id, message_id} objects, in one query.
SELECT jobs.*
FROM jobs
JOIN jsonb_to_recordset(%(keys)s::jsonb) AS k (tenant_id text, message_id text)
  ON jobs.tenant_id = k.tenant_id AND jobs.message_id = k.message_id
WHERE jobs.message_id IS NOT NULL

-- name: get_job
SELECT * FROM jobs WHERE tenant_id = %(tenant_id)s AND id = %(id)s

-- name: insert_event
INSERT INTO events (tenant_id, job_id, type, data, created_at)
VALUES (%(tenant_id)s, %(job_id)s, %(type)s, %(data)s::jsonb, %(now)s)

-- name: queue_settings
-- A queue with a concurrency limit has its row locked until commit, so its claimers
-- count running jobs one at a time. The count must be the next statement: a
-- statement's snapshot is taken before it waits for a lock. Other queues lock nothing.
SELECT q.paused, q.concurrency
FROM queues AS q
LEFT JOIN LATERAL (
    SELECT 1 FROM queues AS l
    WHERE l.tenant_id = q.tenant_id AND l.name = q.name AND q.concurrency IS NOT NULL
    FOR UPDATE
) AS limited ON true
WHERE q.tenant_id = %(tenant_id)s AND q.name = %(queue)s

-- name: count_running_in_queue
SELECT count(*) AS n FROM jobs
WHERE tenant_id = %(tenant_id)s AND queue = %(queue)s AND state = 'running'

-- name: claim_jobs
-- Walks jobs_claimable in claim order; rows other claimers hold are skipped.
-- started_at is never before run_at: the clock is read before this statement, and a
-- promotion that commits in between (with a later clock) can hand it a job whose
-- run_at is after that reading, though the job really starts after the promotion.
WITH picked AS (
    SELECT id FROM jobs
    WHERE tenant_id = %(tenant_id)s AND queue = %(queue)s AND state = 'available'
    -- With gated, the claim is its own transaction: it takes nothing from a paused or
    -- capped queue or an inactive tenant (capped queues go through queue_settings).
    AND (NOT %(gated)s OR (
        NOT EXISTS (SELECT 1 FROM queues AS q
                    WHERE q.tenant_id = %(tenant_id)s AND q.name = %(queue)s
                      AND (q.paused OR q.concurrency IS NOT NULL))
        AND EXISTS (SELECT 1 FROM tenants AS t
                    WHERE t.id = %(tenant_id)s AND t.status = 'active')))
    ORDER BY priority, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE jobs
    SET state = 'running', attempt = attempt + 1, worker_id = %(worker_id)s,
        lease_expires_at = %(lease_expires_at)s, started_at = GREATEST(%(now)s, jobs.run_at),
        updated_at = %(now)s, progress = NULL, progress_message = NULL
    -- By the primary key, whatever the plan's guess of how many were picked: a
    -- generic plan (see PostgresStore.open) guessing thousands would hash-join a
    -- scan of the whole table instead.
    WHERE jobs.id = ANY (ARRAY(SELECT id FROM picked)) AND jobs.state = 'available'
    -- Job's columns in its fields' order: the worker reads them by position.
    RETURNING jobs.id, jobs.tenant_id, jobs.task, jobs.queue, jobs.state,
              jobs.priority, jobs.run_at, jobs.payload, jobs.attempt,
              jobs.max_attempts, jobs.timeout, jobs.message_id,
              jobs.content_type, jobs.content_encoding, jobs.key, jobs.tags,
              jobs.assignee, jobs.immediate, jobs.created_at, jobs.updated_at,
              jobs.started_at, jobs.finished_at, jobs.lease_expires_at,
              jobs.worker_id, jobs.result, jobs.error, jobs.progress,
              jobs.progress_message, jobs.task_version, jobs.created_by
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, %(event)s,
           jsonb_build_object('attempt', attempt, 'worker_id', worker_id, 'task', task),
           %(now)s
    FROM claimed
    ORDER BY priority, run_at, id
)
SELECT * FROM claimed

-- name: claim_urgent_jobs
-- The same, on jobs_claimable_urgent: only priority 0 or immediate jobs.
WITH picked AS (
    SELECT id FROM jobs
    WHERE tenant_id = %(tenant_id)s AND queue = %(queue)s AND state = 'available'
      AND (priority = 0 OR immediate)
    -- With gated, the claim is its own transaction: it takes nothing from a paused or
    -- capped queue or an inactive tenant (capped queues go through queue_settings).
    AND (NOT %(gated)s OR (
        NOT EXISTS (SELECT 1 FROM queues AS q
                    WHERE q.tenant_id = %(tenant_id)s AND q.name = %(queue)s
                      AND (q.paused OR q.concurrency IS NOT NULL))
        AND EXISTS (SELECT 1 FROM tenants AS t
                    WHERE t.id = %(tenant_id)s AND t.status = 'active')))
    ORDER BY priority, run_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE jobs
    SET state = 'running', attempt = attempt + 1, worker_id = %(worker_id)s,
        lease_expires_at = %(lease_expires_at)s, started_at = GREATEST(%(now)s, jobs.run_at),
        updated_at = %(now)s, progress = NULL, progress_message = NULL
    -- By the primary key, whatever the plan's guess of how many were picked: a
    -- generic plan (see PostgresStore.open) guessing thousands would hash-join a
    -- scan of the whole table instead.
    WHERE jobs.id = ANY (ARRAY(SELECT id FROM picked)) AND jobs.state = 'available'
    -- Job's columns in its fields' order: the worker reads them by position.
    RETURNING jobs.id, jobs.tenant_id, jobs.task, jobs.queue, jobs.state,
              jobs.priority, jobs.run_at, jobs.payload, jobs.attempt,
              jobs.max_attempts, jobs.timeout, jobs.message_id,
              jobs.content_type, jobs.content_encoding, jobs.key, jobs.tags,
              jobs.assignee, jobs.immediate, jobs.created_at, jobs.updated_at,
              jobs.started_at, jobs.finished_at, jobs.lease_expires_at,
              jobs.worker_id, jobs.result, jobs.error, jobs.progress,
              jobs.progress_message, jobs.task_version, jobs.created_by
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, %(event)s,
           jsonb_build_object('attempt', attempt, 'worker_id', worker_id, 'task', task),
           %(now)s
    FROM claimed
    ORDER BY priority, run_at, id
)
SELECT * FROM claimed

-- name: heartbeat
-- Fenced by (id, attempt): a stale attempt's lease is left alone.
UPDATE jobs SET lease_expires_at = %(lease_expires_at)s
WHERE state = 'running' AND worker_id = %(worker_id)s AND id = ANY(%(ids)s::bigint[])
  AND (id, attempt) IN (SELECT * FROM unnest(%(ids)s::bigint[], %(attempts)s::int[]))
RETURNING id, attempt

-- name: finish_job
-- A batch of finishes in one statement, from a JSON array (one parameter: far
-- cheaper to send than one array per field): each item is a compare-and-set on
-- (id, attempt, state = 'running'); accepted items get their attempt row and event.
-- Returns the input positions (ord) that were accepted.
WITH input AS (
    SELECT *
    FROM jsonb_to_recordset(%(items)s::jsonb) AS i (
        id bigint, attempt int, state text, run_at timestamptz, result jsonb, error jsonb,
        finished_at timestamptz, outcome text, event text, data jsonb, ord int)
),
finished AS (
    UPDATE jobs
    SET state = i.state, run_at = coalesce(i.run_at, jobs.run_at), result = i.result,
        error = i.error, lease_expires_at = NULL, updated_at = %(now)s,
        finished_at = i.finished_at,
        progress = CASE WHEN i.state = 'completed' THEN 1.0 ELSE jobs.progress END
    FROM input AS i
    WHERE jobs.id = i.id AND jobs.attempt = i.attempt AND jobs.state = 'running'
    RETURNING jobs.id, jobs.tenant_id, jobs.task, jobs.worker_id, jobs.started_at,
              jobs.task_version, i.attempt, i.outcome, i.error, i.event, i.data, i.ord
),
attempts AS (
    -- task_version is the job's: it cannot change while the attempt runs (only a
    -- reprocess of a finished job sets it), so it is the version that ran the attempt.
    INSERT INTO job_attempts (job_id, attempt, tenant_id, worker_id, started_at, finished_at,
                              outcome, error, task_version)
    SELECT id, attempt, tenant_id, coalesce(worker_id, ''), coalesce(started_at, %(now)s),
           %(now)s, outcome, error, task_version
    FROM finished
    ON CONFLICT (job_id, attempt) DO NOTHING
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, event, data || jsonb_build_object('task', task), %(now)s
    FROM finished
    ORDER BY ord
)
SELECT ord FROM finished

-- name: insert_attempt
INSERT INTO job_attempts (job_id, attempt, tenant_id, worker_id, started_at, finished_at,
                          outcome, error, task_version)
VALUES (%(job_id)s, %(attempt)s, %(tenant_id)s, %(worker_id)s, %(started_at)s, %(now)s,
        %(outcome)s, %(error)s::jsonb, %(task_version)s::int)
ON CONFLICT (job_id, attempt) DO NOTHING

-- name: rescue_expired
-- Expired leases go back to available (or to discarded with no attempts left), each
-- with its 'lost' attempt row and event; rows locked elsewhere wait for the next run.
WITH expired AS (
    SELECT id FROM jobs
    WHERE state = 'running' AND lease_expires_at < %(now)s
    ORDER BY lease_expires_at
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
),
rescued AS (
    UPDATE jobs
    SET state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
        lease_expires_at = NULL, error = %(error)s::jsonb, updated_at = %(now)s,
        finished_at = CASE WHEN attempt >= max_attempts THEN %(now)s::timestamptz END
    FROM expired
    WHERE jobs.id = expired.id AND jobs.state = 'running' AND jobs.lease_expires_at < %(now)s
    RETURNING jobs.id, jobs.tenant_id, jobs.task, jobs.queue, jobs.state, jobs.attempt,
              jobs.worker_id, jobs.started_at, jobs.task_version
),
attempts AS (
    INSERT INTO job_attempts (job_id, attempt, tenant_id, worker_id, started_at, finished_at,
                              outcome, error, task_version)
    SELECT id, attempt, tenant_id, coalesce(worker_id, ''), coalesce(started_at, %(now)s),
           %(now)s, 'lost', %(error)s::jsonb, task_version
    FROM rescued
    ON CONFLICT (job_id, attempt) DO NOTHING
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id,
           CASE WHEN state = 'discarded' THEN %(discarded_event)s ELSE %(rescued_event)s END,
           jsonb_build_object('attempt', attempt, 'worker_id', worker_id,
                              'reason', 'lease expired'),
           %(now)s
    FROM rescued
    ORDER BY id
),
notified AS (
    SELECT count(pg_notify('conveyor_jobs', k)) AS n
    FROM (SELECT DISTINCT tenant_id || ':' || queue AS k FROM rescued) AS keys
)
SELECT rescued.id FROM rescued, notified ORDER BY id

-- name: promote_due
WITH due AS (
    SELECT id FROM jobs
    WHERE state IN ('scheduled', 'retryable') AND run_at <= %(now)s
    ORDER BY run_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
promoted AS (
    UPDATE jobs SET state = 'available', updated_at = %(now)s
    FROM due
    WHERE jobs.id = due.id AND jobs.state IN ('scheduled', 'retryable')
    RETURNING jobs.id, jobs.tenant_id, jobs.task, jobs.queue
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, %(event)s, jsonb_build_object('task', task, 'queue', queue), %(now)s
    FROM promoted
    ORDER BY id
),
notified AS (
    SELECT count(pg_notify('conveyor_jobs', k)) AS n
    FROM (SELECT DISTINCT tenant_id || ':' || queue AS k FROM promoted) AS keys
)
SELECT count(*) AS n FROM promoted, notified

-- name: next_due_at
SELECT min(run_at) AS due FROM jobs WHERE state IN ('scheduled', 'retryable')

-- name: set_state
-- Compare-and-set for cancel and retry; a job made available wakes the workers.
-- A reprocess may set the task version it runs with; NULL (a cancel) keeps the job's.
WITH changed AS (
    UPDATE jobs
    SET state = %(to_state)s, updated_at = %(now)s, finished_at = %(finished_at)s,
        lease_expires_at = NULL, run_at = coalesce(%(run_at)s, run_at),
        max_attempts = %(max_attempts)s, result = %(result)s::jsonb,
        error = %(error)s::jsonb,
        task_version = coalesce(%(task_version)s::int, task_version)
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND state = %(from_state)s
    RETURNING *
),
notified AS (
    SELECT count(pg_notify('conveyor_jobs', tenant_id || ':' || queue)) AS n
    FROM changed
    WHERE state = 'available'
)
SELECT changed.* FROM changed, notified

-- name: lock_job
-- The job an edit is about to change, locked until commit: a claim or a promotion
-- (SKIP LOCKED) passes over it meanwhile, and a cancel or another edit waits.
SELECT * FROM jobs WHERE tenant_id = %(tenant_id)s AND id = %(id)s FOR UPDATE

-- name: edit_job
-- Compare-and-set of an edit (the state that lifecycle.after_edit checked), its
-- job.edited event and a wake-up in one statement: a new run_at may be due sooner
-- than what the workers' timers wait for, or due now.
WITH changed AS (
    UPDATE jobs
    SET state = %(to_state)s, payload = %(payload)s::jsonb, queue = %(queue)s,
        priority = %(priority)s, run_at = %(run_at)s, max_attempts = %(max_attempts)s,
        timeout = %(timeout)s, key = %(key)s, tags = %(tags)s::jsonb,
        assignee = %(assignee)s, updated_at = %(now)s
    WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND state = %(from_state)s
    RETURNING *
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, %(event)s, %(data)s::jsonb, %(now)s FROM changed
),
notified AS (
    SELECT count(pg_notify('conveyor_jobs', tenant_id || ':' || queue)) AS n FROM changed
)
SELECT changed.* FROM changed, notified

-- name: record_progress
-- The progress and its event in one statement.
WITH touched AS (
    UPDATE jobs SET progress = %(progress)s, progress_message = %(message)s,
                    updated_at = %(now)s
    WHERE id = %(id)s AND attempt = %(attempt)s AND state = 'running'
    RETURNING id, tenant_id
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, %(event)s, %(data)s::jsonb, %(now)s FROM touched
)
SELECT tenant_id FROM touched

-- name: touch_running
-- Fences a note or an artifact to the running attempt and writes its event.
WITH touched AS (
    UPDATE jobs SET updated_at = %(now)s
    WHERE id = %(id)s AND attempt = %(attempt)s AND state = 'running'
    RETURNING id, tenant_id
),
ev AS (
    INSERT INTO events (tenant_id, job_id, type, data, created_at)
    SELECT tenant_id, id, %(event)s, %(data)s::jsonb, %(now)s FROM touched
)
SELECT tenant_id FROM touched

-- name: insert_artifact
INSERT INTO artifacts (tenant_id, job_id, name, size, sha256, path, created_at)
VALUES (%(tenant_id)s, %(job_id)s, %(name)s, %(size)s, %(sha256)s, %(path)s, %(now)s)
RETURNING *

-- name: list_artifacts
SELECT * FROM artifacts WHERE tenant_id = %(tenant_id)s AND job_id = %(job_id)s ORDER BY id

-- name: list_job_events
SELECT * FROM events
WHERE tenant_id = %(tenant_id)s AND job_id = %(job_id)s
ORDER BY id
LIMIT %(limit)s

-- name: list_attempts
SELECT * FROM job_attempts
WHERE tenant_id = %(tenant_id)s AND job_id = %(job_id)s
ORDER BY attempt

-- name: pause_queue
INSERT INTO queues (tenant_id, name, paused, updated_at)
VALUES (%(tenant_id)s, %(queue)s, %(paused)s, %(now)s)
ON CONFLICT (tenant_id, name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at

-- name: limit_queue
INSERT INTO queues (tenant_id, name, concurrency, updated_at)
VALUES (%(tenant_id)s, %(queue)s, %(concurrency)s, %(now)s)
ON CONFLICT (tenant_id, name) DO UPDATE
SET concurrency = excluded.concurrency, updated_at = excluded.updated_at

-- name: queue_rows
SELECT name, paused, concurrency FROM queues WHERE tenant_id = %(tenant_id)s

-- name: count_jobs
SELECT queue, state, count(*) AS n FROM jobs WHERE tenant_id = %(tenant_id)s
GROUP BY queue, state

-- name: list_events
-- Ids are taken at insert but become visible at commit, so a reader walking ids
-- could pass an event whose transaction commits late, and skip it for ever. Events
-- are read in (transaction id, id) order instead (index events_by_xid), and only
-- from transactions below the horizon (migration 0014): whatever commits later
-- sorts after the cursor. Transactions that do not overlap come out in plain id
-- order. A cursor that no longer exists (pruned) falls back to plain ids.
SELECT * FROM events
WHERE (xid, id) > (coalesce((SELECT xid FROM events WHERE id = %(after_id)s), '0'::xid8),
                   %(after_id)s)
  AND xid < (SELECT conveyor_event_horizon())
  AND (%(tenant_id)s::text IS NULL OR tenant_id = %(tenant_id)s::text)
  AND (id > %(after_id)s OR EXISTS (SELECT 1 FROM events WHERE id = %(after_id)s))
ORDER BY xid, id
LIMIT %(limit)s

-- name: event_horizon
-- The last event below the horizon in list_events order, or the cursor :after_id
-- when nothing below the horizon sorts after it: the horizon can step back when a
-- transaction of another database commits while it is read, a cursor never does.
SELECT coalesce(
    (SELECT id FROM events
     WHERE (xid, id) > (coalesce((SELECT xid FROM events WHERE id = %(after_id)s),
                                 '0'::xid8), %(after_id)s)
       AND xid < (SELECT conveyor_event_horizon())
       AND (id > %(after_id)s OR EXISTS (SELECT 1 FROM events WHERE id = %(after_id)s))
     ORDER BY xid DESC, id DESC
     LIMIT 1),
    %(after_id)s) AS id

-- name: upsert_worker
INSERT INTO workers (id, tenant_id, hostname, pid, queues, concurrency, started_at, last_seen_at)
VALUES (%(id)s, %(tenant_id)s, %(hostname)s, %(pid)s, %(queues)s::jsonb, %(concurrency)s,
        %(started_at)s, %(now)s)
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at

-- name: delete_worker
DELETE FROM workers WHERE id = %(id)s

-- name: list_workers
SELECT * FROM workers WHERE tenant_id = %(tenant_id)s ORDER BY started_at

-- name: tenant_status
SELECT status FROM tenants WHERE id = %(tenant_id)s

-- name: tenant_run_seconds
-- Seconds of attempts that finished in [since, until).
SELECT coalesce(extract(epoch FROM sum(finished_at - started_at)), 0)::float8 AS run_seconds
FROM job_attempts
WHERE tenant_id = %(tenant_id)s AND finished_at >= %(since)s AND finished_at < %(until)s

-- name: tenant_storage_bytes
-- The bytes the tenant keeps now: artifact sizes plus its jobs' payload and result
-- JSON text.
SELECT ((SELECT coalesce(sum(size), 0) FROM artifacts WHERE tenant_id = %(tenant_id)s)
        + (SELECT coalesce(sum(octet_length(payload::text)
                               + coalesce(octet_length(result::text), 0)), 0)
           FROM jobs WHERE tenant_id = %(tenant_id)s))::bigint AS storage_bytes
