"""Delayed jobs and a real worker: a job starts once its ``run_at`` has come and not
before, without the worker polling for it.

The worker here polls the store only every 30 s, so a job that starts within the
tests' generous deadlines was started by the due timer (or a wake-up), not a poll.
How late it starts is measured by ``benchmarks/lateness.py``, not asserted here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from conveyor.domain.jobs import Job, job_edit, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Retry
from conveyor.domain.tasks import TaskSettings
from conveyor.runtime.context import JobContext
from conveyor.runtime.registry import TaskRegistry
from conveyor.runtime.worker import Worker, WorkerSettings
from conveyor.store.protocol import Store

pytestmark = pytest.mark.anyio

TENANT = "default"
NO_POLL = 30.0  # seconds: longer than any test here waits
DEADLINE = 15.0  # seconds a job may take to finish before the test fails


class Starts:
    """A task that records, by payload name, the store's clock when each run began."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.at: dict[str, datetime] = {}

    def registry(self, **handlers: Any) -> TaskRegistry:
        async def record(name: str) -> None:
            self.at.setdefault(name, self.store.clock())

        registry = TaskRegistry()
        registry.add(TaskSettings(name="record"), record)
        for task, handler in handlers.items():
            registry.add(TaskSettings(name=task), handler)
        return registry


@contextlib.asynccontextmanager
async def worker_on(store: Store, registry: TaskRegistry) -> AsyncIterator[Worker]:
    settings = WorkerSettings(poll_seconds=NO_POLL, heartbeat_seconds=0.2, shutdown_grace=1)
    worker = Worker(store, registry, settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.1)  # let it claim nothing and settle into waiting
    try:
        yield worker
    finally:
        stop.set()
        await running


async def enqueue(store: Store, name: str, delay: float, task: str = "record") -> Job:
    [job] = await store.enqueue([new_job(task, {"name": name}, delay=delay, now=store.clock())])
    return job


async def finished(store: Store, job: Job) -> Job:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        found = await store.get_job(TENANT, job.id)
        if found.state is JobState.COMPLETED:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job.id} did not finish within {DEADLINE} s")


def assert_started_on_time(job: Job, handler_start: datetime) -> None:
    assert job.started_at is not None
    assert job.started_at >= job.run_at
    assert handler_start >= job.run_at


async def test_a_delayed_job_starts_after_its_run_at_and_not_before(store: Store) -> None:
    starts = Starts(store)
    async with worker_on(store, starts.registry()):
        jobs = [await enqueue(store, name, delay) for name, delay in (("a", 0.4), ("b", 0.2))]
        assert all(job.state is JobState.SCHEDULED for job in jobs)
        done = [await finished(store, job) for job in jobs]
    for job in done:
        assert_started_on_time(job, starts.at[job.payload["name"]])
    assert starts.at["b"] < starts.at["a"]


async def test_a_job_due_sooner_than_the_one_waited_for_is_not_kept_waiting(
    store: Store,
) -> None:
    starts = Starts(store)
    async with worker_on(store, starts.registry()):
        later = await enqueue(store, "later", 2.0)
        await asyncio.sleep(0.2)  # the timer now sleeps until `later` is due
        sooner = await enqueue(store, "sooner", 0.2)
        sooner = await finished(store, sooner)
        await finished(store, later)
    assert_started_on_time(sooner, starts.at["sooner"])
    assert starts.at["sooner"] < later.run_at


async def test_an_edit_that_brings_run_at_closer_wakes_the_worker(store: Store) -> None:
    starts = Starts(store)
    async with worker_on(store, starts.registry()):
        job = await enqueue(store, "edited", 3600)
        await asyncio.sleep(0.2)
        edit = job_edit({"delay": 0.2}, now=store.clock())
        edited = await store.edit_job(TENANT, job.id, edit)
        assert edited.run_at < job.run_at
        done = await finished(store, job)
    assert done.run_at == edited.run_at
    assert_started_on_time(done, starts.at["edited"])


async def test_a_quick_retry_runs_again_once_its_backoff_has_passed(store: Store) -> None:
    attempts: list[datetime] = []

    async def flaky(name: str, ctx: JobContext) -> None:
        attempts.append(store.clock())
        if ctx.attempt == 1:
            raise Retry(after=0.3)

    starts = Starts(store)
    async with worker_on(store, starts.registry(flaky=flaky)):
        job = await finished(store, await enqueue(store, "flaky", 0, task="flaky"))
    assert job.attempt == 2
    assert attempts[1] - attempts[0] >= timedelta(seconds=0.3)


class CountingStore:
    """The store, counting how often the worker asks when the next job is due."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.due_checks = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def next_due_at(self) -> datetime | None:
        self.due_checks += 1
        return await self.store.next_due_at()


async def test_an_idle_worker_does_not_poll_for_due_jobs(store: Store) -> None:
    await enqueue(store, "far", 3600)
    counting = CountingStore(store)
    settings = WorkerSettings(poll_seconds=0.5, heartbeat_seconds=5)
    worker = Worker(counting, TaskRegistry(), settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(1.0)
    stop.set()
    await running
    # About one look per poll interval from the timer and one per idle wake-up of the
    # claim loop; a 50 ms poll would have made some 20.
    assert counting.due_checks <= 8
