-- Conveyor's hand-written queries for SQLite. Parameters are :named.
-- Each section has a twin of the same name in ../postgres/queries.sql.

-- name: insert_job
-- A whole batch in one statement, from a JSON array of jobs; a row whose
-- (tenant_id, message_id) exists is skipped, and the store looks the first job up
-- with jobs_by_message_ids. ("WHERE true" lets SQLite parse ON CONFLICT after SELECT.)
INSERT INTO jobs (tenant_id, task, queue, state, priority, run_at, payload, max_attempts,
                  timeout, message_id, content_type, content_encoding, key, tags, assignee,
                  immediate, task_version, created_by, created_at, updated_at)
SELECT value ->> 'tenant_id', value ->> 'task', value ->> 'queue', value ->> 'state',
       value ->> 'priority', value ->> 'run_at', value -> 'payload', value ->> 'max_attempts',
       value ->> 'timeout', value ->> 'message_id', value ->> 'content_type',
       value ->> 'content_encoding', value ->> 'key', value -> 'tags', value ->> 'assignee',
       value ->> 'immediate', value ->> 'task_version', value ->> 'created_by', :now, :now
FROM json_each(:batch)
WHERE true
ORDER BY key
ON CONFLICT (tenant_id, message_id) WHERE message_id IS NOT NULL DO NOTHING
RETURNING id

-- name: insert_enqueued_events
-- One event for each job insert_job just added, in id order. SQLite has one writer,
-- so the ids from :low to :high are all of this batch and only of it.
INSERT INTO events (tenant_id, job_id, type, data, created_at)
SELECT tenant_id, id, :type, json_object('task', task, 'queue', queue, 'state', state), :now
FROM jobs
WHERE id BETWEEN :low AND :high
ORDER BY id

-- name: jobs_by_message_ids
-- The jobs of a JSON array of {tenant_id, message_id} objects, in one query.
SELECT *
FROM jobs
WHERE message_id IS NOT NULL
  AND (tenant_id, message_id) IN (
      SELECT value ->> 'tenant_id', value ->> 'message_id' FROM json_each(:keys))

-- name: get_job
SELECT * FROM jobs WHERE tenant_id = :tenant_id AND id = :id

-- name: insert_event
INSERT INTO events (tenant_id, job_id, type, data, created_at)
VALUES (:tenant_id, :job_id, :type, :data, :now)

-- name: queue_settings
SELECT paused, concurrency FROM queues WHERE tenant_id = :tenant_id AND name = :queue

-- name: count_running_in_queue
SELECT count(*) FROM jobs WHERE tenant_id = :tenant_id AND queue = :queue AND state = 'running'

-- name: claim_jobs
UPDATE jobs
SET state = 'running', attempt = attempt + 1, worker_id = :worker_id,
    lease_expires_at = :lease_expires_at, started_at = :now, updated_at = :now,
    progress = NULL, progress_message = NULL
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_claimable
    WHERE tenant_id = :tenant_id AND queue = :queue AND state = 'available'
    ORDER BY priority, run_at, id
    LIMIT :limit
)
RETURNING *

-- name: claim_urgent_jobs
UPDATE jobs
SET state = 'running', attempt = attempt + 1, worker_id = :worker_id,
    lease_expires_at = :lease_expires_at, started_at = :now, updated_at = :now,
    progress = NULL, progress_message = NULL
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_claimable_urgent
    WHERE tenant_id = :tenant_id AND queue = :queue AND state = 'available'
      AND (priority = 0 OR immediate = 1)
    ORDER BY priority, run_at, id
    LIMIT :limit
)
RETURNING *

-- name: insert_started_events
-- One job.started event for each job a claim just took (:ids, a JSON array), in
-- claim order.
INSERT INTO events (tenant_id, job_id, type, data, created_at)
SELECT tenant_id, id, :type,
       json_object('attempt', attempt, 'worker_id', worker_id, 'task', task), :now
FROM jobs
WHERE id IN (SELECT value FROM json_each(:ids))
ORDER BY priority, run_at, id

-- name: heartbeat
UPDATE jobs SET lease_expires_at = :lease_expires_at
WHERE state = 'running' AND worker_id = :worker_id
  AND (id, attempt) IN (SELECT value ->> 0, value ->> 1 FROM json_each(:held))
RETURNING id

-- name: finish_job
-- A batch of finishes, from a JSON array: each item is a compare-and-set on
-- (id, attempt, state = 'running'). The store writes the accepted items' attempt
-- rows and events in the same transaction.
UPDATE jobs
SET state = item.value ->> 'state',
    run_at = coalesce(item.value ->> 'run_at', jobs.run_at),
    result = nullif(item.value -> 'result', 'null'),
    error = nullif(item.value -> 'error', 'null'),
    lease_expires_at = NULL, updated_at = :now,
    finished_at = item.value ->> 'finished_at',
    progress = CASE WHEN item.value ->> 'state' = 'completed' THEN 1.0 ELSE jobs.progress END
FROM json_each(:items) AS item
WHERE jobs.id = item.value ->> 'id' AND jobs.attempt = item.value ->> 'attempt'
  AND jobs.state = 'running'
RETURNING id, tenant_id, task, worker_id, started_at, task_version

-- name: insert_attempt
-- task_version is the job's: it cannot change while the attempt runs (only a
-- reprocess of a finished job sets it), so it is the version that ran the attempt.
INSERT INTO job_attempts (job_id, attempt, tenant_id, worker_id, started_at, finished_at,
                          outcome, error, task_version)
VALUES (:job_id, :attempt, :tenant_id, :worker_id, :started_at, :now, :outcome, :error,
        :task_version)
ON CONFLICT (job_id, attempt) DO NOTHING

-- name: rescue_expired
UPDATE jobs
SET state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END,
    lease_expires_at = NULL, error = :error, updated_at = :now,
    finished_at = CASE WHEN attempt >= max_attempts THEN :now END
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_leased
    WHERE state = 'running' AND lease_expires_at < :now
    LIMIT 1000
)
RETURNING id, tenant_id, task, queue, state, attempt, worker_id, started_at, task_version

-- name: promote_due
UPDATE jobs SET state = 'available', updated_at = :now
WHERE id IN (
    SELECT id FROM jobs INDEXED BY jobs_waiting
    WHERE state IN ('scheduled', 'retryable') AND run_at <= :now
    ORDER BY run_at
    LIMIT :limit
)
RETURNING id, tenant_id, task, queue

-- name: next_due_at
SELECT min(run_at) FROM jobs WHERE state IN ('scheduled', 'retryable')

-- name: set_state
-- A reprocess may set the task version it runs with; NULL (a cancel) keeps the job's.
UPDATE jobs
SET state = :to_state, updated_at = :now, finished_at = :finished_at,
    lease_expires_at = NULL, run_at = coalesce(:run_at, run_at),
    max_attempts = :max_attempts, result = :result, error = :error,
    task_version = coalesce(:task_version, task_version)
WHERE tenant_id = :tenant_id AND id = :id AND state = :from_state
RETURNING *

-- name: lock_job
-- The job an edit is about to change. The write transaction (BEGIN IMMEDIATE)
-- already holds the database's write lock, so this is a plain read.
SELECT * FROM jobs WHERE tenant_id = :tenant_id AND id = :id

-- name: edit_job
-- Compare-and-set of an edit: the state that lifecycle.after_edit checked must still
-- be there; every editable field takes its new (or unchanged) value.
UPDATE jobs
SET state = :to_state, payload = :payload, queue = :queue, priority = :priority,
    run_at = :run_at, max_attempts = :max_attempts, timeout = :timeout, key = :key,
    tags = :tags, assignee = :assignee, updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND state = :from_state
RETURNING *

-- name: record_progress
UPDATE jobs SET progress = :progress, progress_message = :message, updated_at = :now
WHERE id = :id AND attempt = :attempt AND state = 'running'
RETURNING tenant_id

-- name: touch_running
UPDATE jobs SET updated_at = :now
WHERE id = :id AND attempt = :attempt AND state = 'running'
RETURNING tenant_id

-- name: insert_artifact
INSERT INTO artifacts (tenant_id, job_id, name, size, sha256, path, created_at)
VALUES (:tenant_id, :job_id, :name, :size, :sha256, :path, :now)
RETURNING *

-- name: list_artifacts
SELECT * FROM artifacts WHERE tenant_id = :tenant_id AND job_id = :job_id ORDER BY id

-- name: list_job_events
SELECT * FROM events
WHERE tenant_id = :tenant_id AND job_id = :job_id
ORDER BY id
LIMIT :limit

-- name: list_attempts
SELECT * FROM job_attempts WHERE tenant_id = :tenant_id AND job_id = :job_id ORDER BY attempt

-- name: pause_queue
INSERT INTO queues (tenant_id, name, paused, updated_at)
VALUES (:tenant_id, :queue, :paused, :now)
ON CONFLICT (tenant_id, name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at

-- name: limit_queue
INSERT INTO queues (tenant_id, name, concurrency, updated_at)
VALUES (:tenant_id, :queue, :concurrency, :now)
ON CONFLICT (tenant_id, name) DO UPDATE
SET concurrency = excluded.concurrency, updated_at = excluded.updated_at

-- name: queue_rows
SELECT name, paused, concurrency FROM queues WHERE tenant_id = :tenant_id

-- name: count_jobs
SELECT queue, state, count(*) AS n FROM jobs WHERE tenant_id = :tenant_id GROUP BY queue, state

-- name: list_events
SELECT * FROM events
WHERE id > :after_id AND (:tenant_id IS NULL OR tenant_id = :tenant_id)
ORDER BY id
LIMIT :limit

-- name: event_horizon
-- One writer at a time: ids are given out in commit order.
SELECT max(coalesce((SELECT max(id) FROM events), 0), :after_id) AS id

-- name: upsert_worker
INSERT INTO workers (id, tenant_id, hostname, pid, queues, concurrency, started_at, last_seen_at)
VALUES (:id, :tenant_id, :hostname, :pid, :queues, :concurrency, :started_at, :now)
ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at

-- name: delete_worker
DELETE FROM workers WHERE id = :id

-- name: list_workers
SELECT * FROM workers WHERE tenant_id = :tenant_id ORDER BY started_at

-- name: tenant_status
SELECT status FROM tenants WHERE id = :tenant_id

-- name: tenant_run_seconds
-- Seconds of attempts that finished in [since, until).
SELECT coalesce(sum(finished_at - started_at), 0.0) AS run_seconds
FROM job_attempts
WHERE tenant_id = :tenant_id AND finished_at >= :since AND finished_at < :until

-- name: tenant_storage_bytes
-- The bytes the tenant keeps now: artifact sizes plus its jobs' payload and result
-- JSON text.
SELECT (SELECT coalesce(sum(size), 0) FROM artifacts WHERE tenant_id = :tenant_id)
    + (SELECT coalesce(sum(length(CAST(payload AS BLOB))
                           + coalesce(length(CAST(result AS BLOB)), 0)), 0)
       FROM jobs WHERE tenant_id = :tenant_id) AS storage_bytes
