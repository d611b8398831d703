"""What a run measures and how big it is: the full plan, the quick plan, the constants."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
DOC_PATH = ROOT / "docs" / "benchmarks.md"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

SYSTEMS = ("conveyor-sqlite", "conveyor-postgres", "pgqueuer", "procrastinate", "celery-rabbitmq")
EXTRA_SYSTEMS = ("pgqueuer-batch100",)

# Celery on RabbitMQ, no-op tasks, as quoted when the targets were set: the baseline of
# the SQLite target only when a run leaves ``celery-rabbitmq`` out (``--only``).
CELERY_RABBITMQ_PER_SECOND = 2_900.0

CONVEYOR_CONCURRENCY = 100
CONVEYOR_BATCH = 100
PGQUEUER_BATCH = 10  # pgqueuer's own default (`pgq run --batch-size`)
PROCRASTINATE_CONCURRENCY = 10
# A stalled processing run: its worker finished jobs at under 1/20 of the run's best
# pace between two polls for 2 s or more in a row, or the whole run went at under 1/5
# of the system's best run (a run slow from its first poll has no pace to fall from).
# The runner measures a stalled run once more; the report leaves stalled runs out of
# the median (and names them).
STALL_FRACTION = 0.05
STALL_SECONDS = 2.0
SLOW_RUN_FRACTION = 0.2


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes and repetitions of one run."""

    mode: str
    repeats: int
    single_jobs: int  # enqueue/s, one call per job
    batched_jobs: int  # enqueue/s, in batches
    batch_size: int
    process_jobs: int  # pre-loaded, then processed by one worker process
    process_max_seconds: float  # a slow system is measured over this window only
    latency_jobs: int
    latency_gap_seconds: float
    claim_small: int  # waiting jobs for the claim-cost measurement
    claim_large: int
    claim_rounds: int
    analyze_after_preload: bool = True  # PostgreSQL: ANALYZE, as autovacuum soon would

    def with_jobs(self, jobs: int | None) -> Plan:
        """The plan with ``--jobs`` applied (the jobs pre-loaded for processed/s)."""
        return self if jobs is None else replace(self, process_jobs=jobs)


FULL = Plan(
    mode="full",
    repeats=3,
    single_jobs=5_000,
    batched_jobs=100_000,
    batch_size=1_000,
    process_jobs=50_000,
    process_max_seconds=20.0,
    latency_jobs=200,
    latency_gap_seconds=0.020,
    claim_small=1_000,
    claim_large=1_000_000,
    claim_rounds=50,
)

QUICK = Plan(
    mode="quick",
    repeats=1,
    single_jobs=1_000,
    batched_jobs=20_000,
    batch_size=1_000,
    process_jobs=5_000,
    process_max_seconds=8.0,
    latency_jobs=100,
    latency_gap_seconds=0.020,
    claim_small=1_000,
    claim_large=100_000,
    claim_rounds=20,
)
