"""The measurements on one system: enqueue rates, processing rate, pickup latency.

Each function gets a :class:`~benchmarks.systems.System` already installed and
open on its own fresh database, and returns plain numbers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import pairwise

from benchmarks.config import STALL_FRACTION, Plan
from benchmarks.cpu import backends_cpu, process_cpu
from benchmarks.stamps import read_starts
from benchmarks.systems import System
from benchmarks.workers import WorkerProcess

POLL_SECONDS = 0.25
STARTUP_TIMEOUT = 60.0
PRELOAD_BATCH = 1_000
WARMUP_SEQ = -1
Timeline = list[tuple[float, int]]  # (monotonic seconds, jobs done) at each poll


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """Jobs a worker finished over the window from its first start to its last finish."""

    per_second: float
    done: int
    window_seconds: float
    capped: bool  # stopped at the plan's time limit, before all jobs were done
    stall_seconds: float  # the longest stall (see config.STALL_FRACTION), 0.0 when none
    worker_cpu_ms: float | None  # worker process CPU per 1,000 jobs done
    database_cpu_ms: float | None  # its PostgreSQL backends' CPU per 1,000 jobs done


@dataclass(frozen=True, slots=True)
class LatencyResult:
    """Enqueue-to-start latency percentiles, in milliseconds."""

    p50_ms: float
    p99_ms: float
    samples: int
    missing: int


async def enqueue_single(system: System, count: int) -> float:
    """Jobs per second, one enqueue call (one transaction) per job."""
    started = time.perf_counter()
    for _ in range(count):
        await system.enqueue_noop()
    return count / (time.perf_counter() - started)


async def enqueue_batched(system: System, total: int, batch: int) -> float:
    """Jobs per second through the system's batch API, ``batch`` jobs per call."""
    started = time.perf_counter()
    for offset in range(0, total, batch):
        await system.enqueue_noops(min(batch, total - offset))
    return total / (time.perf_counter() - started)


async def _preload(system: System, count: int) -> None:
    for offset in range(0, count, PRELOAD_BATCH):
        await system.enqueue_noops(min(PRELOAD_BATCH, count - offset))


def longest_stall(timeline: Timeline) -> float:
    """The longest run of consecutive polls, in seconds, over which jobs were finished at
    under ``STALL_FRACTION`` of the best pace seen between two polls. It counts from the
    last poll before the first job was done, so a worker that slows down right after its
    first jobs still has a pace to fall from."""
    first = next((i for i, (_, done) in enumerate(timeline) if done), None)
    if first is None:
        return 0.0
    polls = timeline[max(first - 1, 0) :]
    paces = [(t1 - t0, (d1 - d0) / (t1 - t0)) for (t0, d0), (t1, d1) in pairwise(polls)]
    if not paces:
        return 0.0
    slow = STALL_FRACTION * max(pace for _, pace in paces)
    longest = current = 0.0
    for seconds, pace in paces:
        current = current + seconds if pace < slow else 0.0
        longest = max(longest, current)
    return longest


async def _wait_until_done(
    system: System, worker: WorkerProcess, total: int, max_seconds: float
) -> tuple[bool, Timeline]:
    """Poll until every job is done, or ``max_seconds`` after the first is. Returns
    whether the time limit stopped it, and the jobs done at each poll."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    timeline: Timeline = []
    first_seen: float | None = None
    while True:
        await asyncio.sleep(POLL_SECONDS)
        worker.check_alive()
        done = await system.done_count()
        now = time.monotonic()
        timeline.append((now, done))
        if done >= total:
            return False, timeline
        if done and first_seen is None:
            first_seen = now
        if first_seen is not None and now - first_seen >= max_seconds:
            return True, timeline
        if first_seen is None and now > deadline:
            raise TimeoutError(f"{system.name}: no job done {STARTUP_TIMEOUT} s after start")


def _worker(system: System, label: str) -> WorkerProcess:
    return WorkerProcess(
        system.worker_command(), system.worker_env(), system.workdir / f"{label}.log"
    )


async def processing(system: System, plan: Plan) -> ProcessResult:
    """Pre-load no-op jobs, start one worker, measure first start to last finish."""
    await _preload(system, plan.process_jobs)
    if plan.analyze_after_preload:
        await system.refresh_statistics()
    database = system.database_name()
    database_before = backends_cpu(database)
    worker = _worker(system, "process")
    worker.start()
    try:
        capped, timeline = await _wait_until_done(
            system, worker, plan.process_jobs, plan.process_max_seconds
        )
        # read before the stop: a backend's counters go with it
        worker_cpu, database_after = process_cpu(worker.pid), backends_cpu(database)
    finally:
        worker.stop()
    progress = await system.progress()
    if progress.first_start is None or progress.last_finish is None or not progress.done:
        raise RuntimeError(f"{system.name}: no job finished")
    window = max(progress.last_finish - progress.first_start, 1e-6)
    per_thousand = 1e6 / progress.done  # CPU seconds to milliseconds per 1,000 jobs
    return ProcessResult(
        progress.done / window,
        progress.done,
        window,
        capped,
        longest_stall(timeline),
        None if worker_cpu is None else worker_cpu * per_thousand,
        None
        if database_before is None or database_after is None
        else (database_after - database_before) * per_thousand,
    )


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def _wait_for_stamps(system: System, worker: WorkerProcess, wanted: set[int]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    path = system.workdir / "stamps.txt"
    while not wanted <= read_starts(path).keys():
        worker.check_alive()
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


async def paced(count: int, gap: float) -> AsyncIterator[int]:
    """Yield 0 to ``count - 1``, number n ``n * gap`` seconds after the first (sooner
    if the caller fell behind)."""
    loop = asyncio.get_running_loop()
    origin = loop.time()
    for seq in range(count):
        await asyncio.sleep(max(0.0, origin + seq * gap - loop.time()))
        yield seq


async def _enqueue_paced(system: System, count: int, gap: float) -> dict[int, float]:
    """Enqueue ``count`` stamp jobs ``gap`` seconds apart; each one's time before the call."""
    enqueued: dict[int, float] = {}
    async for seq in paced(count, gap):
        enqueued[seq] = time.time()
        await system.enqueue_stamp(seq)
    return enqueued


async def latency(system: System, plan: Plan) -> LatencyResult:
    """With an idle worker, enqueue jobs one by one; start time minus enqueue time."""
    worker = _worker(system, "latency")
    worker.start()
    try:
        await system.enqueue_stamp(WARMUP_SEQ)  # returns once the worker is up and idle
        await _wait_for_stamps(system, worker, {WARMUP_SEQ})
        await asyncio.sleep(0.5)
        enqueued = await _enqueue_paced(system, plan.latency_jobs, plan.latency_gap_seconds)
        await _wait_for_stamps(system, worker, set(enqueued))
    finally:
        worker.stop()
    starts = read_starts(system.workdir / "stamps.txt")
    waits = [(starts[seq] - at) * 1000 for seq, at in enqueued.items() if seq in starts]
    if not waits:
        raise RuntimeError(f"{system.name}: no latency job started")
    return LatencyResult(
        p50_ms=percentile(waits, 0.50),
        p99_ms=percentile(waits, 0.99),
        samples=len(waits),
        missing=len(enqueued) - len(waits),
    )
