-- Task version queries, once for both databases: :named parameters, no casts, no
-- dialect functions, every time a parameter. conveyor.store.queries.load_portable
-- adapts them to each dialect. Only whole-line comments: they are dropped before the
-- parameters are rewritten.

-- name: insert_version
-- The next number is taken in the insert itself. Two concurrent changes of one task
-- may compute the same number; the primary key refuses the second (Conflict), and
-- the store tries once more.
INSERT INTO task_versions (tenant_id, name, version, queue, priority, max_attempts, timeout,
                           immediate, description, created_at, created_by)
VALUES (:tenant_id, :name,
        (SELECT COALESCE(MAX(version), 0) + 1 FROM task_versions
         WHERE tenant_id = :tenant_id AND name = :name),
        :queue, :priority, :max_attempts, :timeout, :immediate, :description, :created_at,
        :created_by)
RETURNING *

-- name: current_version
SELECT * FROM task_versions
WHERE tenant_id = :tenant_id AND name = :name
ORDER BY version DESC
LIMIT 1

-- name: list_versions
SELECT * FROM task_versions
WHERE tenant_id = :tenant_id AND name = :name
ORDER BY version DESC

-- name: list_tasks
SELECT * FROM task_versions AS v
WHERE v.tenant_id = :tenant_id
  AND v.version = (SELECT MAX(l.version) FROM task_versions AS l
                   WHERE l.tenant_id = v.tenant_id AND l.name = v.name)
ORDER BY v.name
