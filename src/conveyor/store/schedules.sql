-- Schedule queries, once for both databases: :named parameters, no casts, no dialect
-- functions, every time a parameter. conveyor.store.queries.load_portable adapts them
-- to each dialect. Only whole-line comments: they are dropped before the parameters
-- are rewritten.

-- name: insert_schedule
INSERT INTO schedules (tenant_id, name, kind, cron, timezone, interval_seconds, anchor, task,
                       payload, queue, priority, assignee, enabled, start_at, end_at, jitter,
                       description, misfire, overlap, catchup_limit, source, owner, revision,
                       next_fire_at, pending, created_at, updated_at)
VALUES (:tenant_id, :name, :kind, :cron, :timezone, :interval_seconds, :anchor, :task,
        :payload, :queue, :priority, :assignee, :enabled, :start_at, :end_at, :jitter,
        :description, :misfire, :overlap, :catchup_limit, :source, :owner, 1,
        :next_fire_at, '[]', :now, :now)
RETURNING *

-- name: update_schedule
-- A compare-and-set on the revision: an edit based on a stale read changes nothing.
-- The waiting fire times belong to the old rule and are dropped with it.
UPDATE schedules
SET name = :name, kind = :kind, cron = :cron, timezone = :timezone,
    interval_seconds = :interval_seconds, anchor = :anchor, task = :task, payload = :payload,
    queue = :queue, priority = :priority, assignee = :assignee, enabled = :enabled,
    start_at = :start_at, end_at = :end_at, jitter = :jitter, description = :description,
    misfire = :misfire, overlap = :overlap, catchup_limit = :catchup_limit, source = :source,
    revision = revision + 1, next_fire_at = :next_fire_at, pending = '[]', updated_at = :now
WHERE tenant_id = :tenant_id AND id = :id AND revision = :revision
RETURNING *

-- name: get_schedule
SELECT * FROM schedules WHERE tenant_id = :tenant_id AND id = :id

-- name: get_schedule_by_name
SELECT * FROM schedules WHERE tenant_id = :tenant_id AND name = :name

-- name: list_schedules
SELECT * FROM schedules WHERE tenant_id = :tenant_id ORDER BY name

-- name: delete_schedule
DELETE FROM schedules WHERE tenant_id = :tenant_id AND id = :id RETURNING id

-- name: due_schedules
-- Every tenant's: the scheduler serves them all. A schedule is due at its fire time, or
-- when it holds waiting runs and its last job has finished (while that job runs there
-- is nothing to do for it). previous_running says whether that job is unfinished, for
-- the overlap policy. Waiting-only schedules (no next fire time) come last.
SELECT s.*,
       CASE WHEN EXISTS (SELECT 1 FROM jobs AS j
                         WHERE j.id = s.last_job_id
                           AND j.state IN ('scheduled', 'available', 'running', 'retryable'))
            THEN 1 ELSE 0 END AS previous_running
FROM schedules AS s
WHERE s.enabled
  AND (s.next_fire_at <= :now
       OR (s.pending <> '[]'
           AND NOT EXISTS (SELECT 1 FROM jobs AS j
                           WHERE j.id = s.last_job_id
                             AND j.state IN ('scheduled', 'available', 'running',
                                             'retryable'))))
ORDER BY s.next_fire_at IS NULL, s.next_fire_at
LIMIT :limit

-- name: next_fire_at
SELECT MIN(next_fire_at) AS next_fire_at FROM schedules WHERE enabled

-- name: advance_schedule
-- The scheduler moves a schedule on only from the position it read: another node
-- (or an edit) that got there first wins, and this firing's jobs were the same ones.
UPDATE schedules
SET next_fire_at = :next_fire_at, last_fire_at = COALESCE(:last_fire_at, last_fire_at),
    last_job_id = COALESCE(:last_job_id, last_job_id), pending = :pending
WHERE id = :id AND revision = :revision AND pending = :old_pending
  AND next_fire_at IS NOT DISTINCT FROM :old_next_fire_at
RETURNING id

-- name: insert_run
INSERT INTO schedule_runs (tenant_id, schedule_id, fire_at, outcome, reason, job_id, created_at)
VALUES (:tenant_id, :schedule_id, :fire_at, :outcome, :reason, :job_id, :now)
ON CONFLICT (schedule_id, fire_at) DO NOTHING

-- name: insert_run_event
-- Only for a fire time not yet recorded: a node that fires it again (after a crash
-- between the job and this record) announces nothing new.
INSERT INTO events (tenant_id, job_id, type, data, created_at)
SELECT :tenant_id, :job_id, :type, :data, :now
WHERE NOT EXISTS (SELECT 1 FROM schedule_runs
                  WHERE schedule_id = :schedule_id AND fire_at = :fire_at)

-- name: list_runs
SELECT r.*, j.state AS job_state, j.finished_at AS job_finished_at
FROM schedule_runs AS r
LEFT JOIN jobs AS j ON j.id = r.job_id AND j.tenant_id = r.tenant_id
WHERE r.tenant_id = :tenant_id AND r.schedule_id = :schedule_id
  AND r.fire_at < :before
ORDER BY r.fire_at DESC
LIMIT :limit

-- name: runs_between
SELECT r.*, j.state AS job_state, j.finished_at AS job_finished_at
FROM schedule_runs AS r
LEFT JOIN jobs AS j ON j.id = r.job_id AND j.tenant_id = r.tenant_id
WHERE r.tenant_id = :tenant_id AND r.fire_at >= :start AND r.fire_at < :end
ORDER BY r.fire_at
LIMIT :limit
