-- Dashboard queries: read-only, off the hot path, run through store.run_sql.
-- :named parameters; a section whose name ends in _sqlite or _postgres is for that
-- dialect only (bucketing times differs: REAL epoch seconds on SQLite, timestamptz on
-- PostgreSQL). Only whole-line comments.

-- name: finished_per_span_sqlite
-- Completions and discards of a tenant's jobs since :since, by span of :span seconds
-- (epoch / span). The type IN (...) term is the partial index
-- events_finished_by_tenant's own predicate, written the same way in both queries, so
-- both databases use that index.
SELECT CAST(created_at / :span AS INTEGER) AS span, type, COUNT(*) AS n
FROM events
WHERE tenant_id = :tenant_id
  AND created_at >= :since
  AND type IN ('job.succeeded', 'job.discarded')
GROUP BY CAST(created_at / :span AS INTEGER), type

-- name: finished_per_span_postgres
SELECT CAST(FLOOR(EXTRACT(EPOCH FROM created_at) / :span) AS BIGINT) AS span, type,
       COUNT(*) AS n
FROM events
WHERE tenant_id = :tenant_id
  AND created_at >= :since
  AND type IN ('job.succeeded', 'job.discarded')
GROUP BY CAST(FLOOR(EXTRACT(EPOCH FROM created_at) / :span) AS BIGINT), type
