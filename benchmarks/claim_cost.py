"""Claim cost: Conveyor's claim + finish of batches of 100 on PostgreSQL, small vs huge backlog.

The backlog is inserted with ``generate_series`` (fast), then ``ANALYZE`` runs while
every row is available (the stale statistics a real queue's planner sees). Each
timed round claims 100 jobs and finishes them; 100 new jobs are then added,
untimed, so the backlog stays the same size.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import psycopg

from benchmarks.databases import fresh_postgres
from conveyor.domain.outcomes import Completed, decide
from conveyor.domain.retry import Backoff
from conveyor.store.postgres.store import PostgresStore

BATCH = 100
WORKER_ID = "bench-claim"
LEASE_SECONDS = 60.0

_FILL = """
INSERT INTO jobs (tenant_id, task, queue, state, priority, run_at, payload, max_attempts,
                  content_type, content_encoding, created_at, updated_at)
SELECT 'default', 'bench.noop', 'default', 'available', 5,
       now() - interval '1 hour' + g * interval '1 microsecond', '{}'::jsonb, 3,
       'application/json', 'utf-8', now(), now()
FROM generate_series(1, %(count)s) AS g
"""
_TOP_UP = _FILL.replace("now() - interval '1 hour' +", "now() +")


@dataclass(frozen=True, slots=True)
class ClaimCost:
    """Median milliseconds of one claim+finish round of 100 jobs at one backlog size."""

    waiting: int
    median_ms: float
    p90_ms: float
    jobs_per_second: float


async def _fill(url: str, count: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(_FILL, {"count": count})
        await conn.execute("ANALYZE jobs")


async def _top_up(url: str, count: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            _FILL.replace("now() - interval '1 hour' +", "now() +"), {"count": count}
        )


async def _round(store: PostgresStore) -> float:
    """One claim of 100 and the finish of all 100; seconds."""
    started = time.perf_counter()
    jobs = await store.claim("default", "default", WORKER_ID, BATCH, LEASE_SECONDS)
    now = store.clock()
    finishes = [
        decide(
            Completed(None),
            job_id=job.id,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            backoff=Backoff(),
            now=now,
        )
        for job in jobs
    ]
    accepted = await store.finish(finishes)
    elapsed = time.perf_counter() - started
    if len(jobs) != BATCH or not all(accepted):
        raise RuntimeError(f"claimed {len(jobs)} of {BATCH}, finished {sum(accepted)}")
    return elapsed


async def measure(waiting: int, rounds: int) -> ClaimCost:
    """Claim cost with ``waiting`` available jobs, over ``rounds`` rounds (after a warm-up)."""
    async with fresh_postgres("claim") as url:
        store = PostgresStore(url)
        await store.open()
        try:
            await store.migrate()
            await _fill(url, waiting)
            await _round(store)  # warm-up: connections, plans, caches
            await _top_up(url, BATCH)
            times = []
            for _ in range(rounds):
                times.append(await _round(store))
                await _top_up(url, BATCH)
        finally:
            await store.close()
    median = statistics.median(times)
    p90 = statistics.quantiles(times, n=10)[-1]
    return ClaimCost(waiting, median * 1000, p90 * 1000, BATCH / median)
