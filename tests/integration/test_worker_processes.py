"""Real worker processes: kill -9 loses nothing; two workers never run one attempt twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conveyor.domain.jobs import JobFilter, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.store.protocol import Store

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def start_worker(database_url: str, run_log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_TEST_RUN_LOG": str(run_log),
        "CONVEYOR_SQLITE_SYNCHRONOUS": "NORMAL",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "conveyor", "worker", "tests.apps.counting:app"]
    options = ["--lease", "2", "--heartbeat", "0.5", "--grace", "5", *extra]
    return subprocess.Popen(
        [*command, *options], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def runs(run_log: Path) -> list[tuple[int, int]]:
    if not run_log.exists():
        return []
    pairs = []
    for line in run_log.read_text().splitlines():
        job_id, attempt, _ = line.split()
        pairs.append((int(job_id), int(attempt)))
    return pairs


async def wait_for(check, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


async def count_state(store: Store, state: JobState) -> int:
    counts = await store.count_jobs("default")
    return sum(n for (_, s), n in counts.items() if s is state)


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr.decode(errors="replace")


async def test_kill_9_mid_batch_loses_no_job(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    total = 1000
    # Uneven durations keep the worker's slots out of step, so a kill lands mid-job.
    jobs = [new_job("count", {"n": i, "sleep": 0.005 + (i % 7) * 0.005}) for i in range(total)]
    await store.enqueue(jobs)
    run_log = tmp_path / "runs.log"
    first = start_worker(database_url, run_log, "--concurrency", "10")
    try:
        await wait_for(_at_least(run_log, 200), 60, "the first worker to start 200 jobs")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        stop(first)
    in_flight = await count_state(store, JobState.RUNNING)
    assert in_flight > 0, "the kill should land while jobs are running"
    second = start_worker(database_url, run_log, "--concurrency", "10")
    try:
        await wait_for(
            _all_in(store, JobState.COMPLETED, total), 120, "every job to complete after restart"
        )
    finally:
        log = stop(second)
    assert second.returncode == 0, log
    jobs = await store.list_jobs("default", JobFilter(limit=1000))
    assert len(jobs) == total
    assert all(j.state is JobState.COMPLETED for j in jobs)
    rescued = [j for j in jobs if j.attempt > 1]
    assert len(rescued) >= in_flight
    for job in rescued:
        outcomes = [a.outcome for a in await store.list_attempts("default", job.id)]
        assert outcomes[0] == "lost" and outcomes[-1] == "completed"
    assert {job_id for job_id, _ in runs(run_log)} == {j.id for j in jobs}


def _at_least(run_log: Path, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(runs(run_log)) >= n

    return check


def _all_in(store: Store, state: JobState, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await count_state(store, state) == n

    return check


@pytest.mark.parametrize("store_kind", ["postgres"], indirect=True)
async def test_two_workers_on_postgres_never_run_one_attempt_twice(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    total = 2000
    await store.enqueue([new_job("count", {"n": i, "sleep": 0}) for i in range(total)])
    run_log = tmp_path / "runs.log"
    workers = [start_worker(database_url, run_log, "--concurrency", "20") for _ in range(2)]
    try:
        await wait_for(_all_in(store, JobState.COMPLETED, total), 120, "all jobs to complete")
    finally:
        logs = [stop(w) for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    pairs = runs(run_log)
    duplicates = [pair for pair, n in Counter(pairs).items() if n > 1]
    assert duplicates == []
    assert len(pairs) == total
    pids = Counter(line.split()[2] for line in run_log.read_text().splitlines())
    assert len(pids) == 2, f"both workers should have taken jobs: {pids}"
