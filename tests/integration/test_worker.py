"""The worker runtime against real stores: handlers, outcomes, reports, slots, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.jobs import new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Discard, Retry
from conveyor.domain.retry import Backoff
from conveyor.domain.tasks import TaskSettings
from conveyor.runtime.context import JobContext
from conveyor.runtime.registry import TaskRegistry
from conveyor.runtime.worker import Worker, WorkerSettings
from conveyor.store.protocol import Store
from conveyor.testing import drain

pytestmark = pytest.mark.anyio

FAST = Backoff(base=0.01, cap=0.05, jitter=0)


def registry_with(**handlers: Any) -> TaskRegistry:
    registry = TaskRegistry()
    for name, handler in handlers.items():
        registry.add(TaskSettings(name=name, backoff=FAST), handler)
    return registry


async def enqueue(store: Store, task: str, payload: Any = None, **options: Any) -> int:
    [job] = await store.enqueue([new_job(task, payload, **options)])
    return job.id


async def test_async_and_sync_handlers_get_payload_keys_and_store_results(store: Store) -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    def shout(text: str) -> str:
        assert threading.current_thread() is not threading.main_thread()
        return text.upper()

    registry = registry_with(add=add, shout=shout)
    add_id = await enqueue(store, "add", {"a": 2, "b": 3})
    shout_id = await enqueue(store, "shout", {"text": "hi"})
    await drain(store, registry)
    assert (await store.get_job("default", add_id)).result == 5
    shout_job = await store.get_job("default", shout_id)
    assert shout_job.state is JobState.COMPLETED
    assert shout_job.result == "HI"


async def test_failures_retry_with_backoff_then_dead_letter_with_error_history(
    store: Store,
) -> None:
    def broken() -> None:
        raise ValueError("no luck")

    job_id = await enqueue(store, "broken", max_attempts=3)
    await drain(store, registry_with(broken=broken))
    job = await store.get_job("default", job_id)
    assert job.state is JobState.DISCARDED
    assert job.attempt == 3
    attempts = await store.list_attempts("default", job_id)
    assert [a.outcome for a in attempts] == ["failed", "failed", "discarded"]
    assert all(a.error and a.error.type == "ValueError" for a in attempts)
    assert attempts[0].error is not None and "no luck" in attempts[0].error.traceback


async def test_retry_and_discard_exceptions_steer_the_outcome(store: Store) -> None:
    def once(ctx: JobContext) -> int:
        if ctx.attempt == 1:
            raise Retry(after=0.01)
        return ctx.attempt

    def refuse() -> None:
        raise Discard("bad input, retrying will not help")

    once_id = await enqueue(store, "once")
    refuse_id = await enqueue(store, "refuse", max_attempts=5)
    await drain(store, registry_with(once=once, refuse=refuse))
    assert (await store.get_job("default", once_id)).result == 2
    refused = await store.get_job("default", refuse_id)
    assert refused.state is JobState.DISCARDED
    assert refused.attempt == 1
    assert refused.error is not None and "retrying will not help" in refused.error.message


async def test_timeout_fails_the_attempt_and_flags_the_context(store: Store) -> None:
    seen: list[bool] = []

    async def slow(ctx: JobContext) -> None:
        try:
            await asyncio.sleep(5)
        finally:
            seen.append(ctx.cancelled)

    job_id = await enqueue(store, "slow", timeout=0.1, max_attempts=1)
    await drain(store, registry_with(slow=slow))
    job = await store.get_job("default", job_id)
    assert job.state is JobState.DISCARDED
    assert job.error is not None and job.error.type == "TimeoutError"
    assert seen == [True]


async def test_unknown_task_and_bad_payload_fail_with_a_clear_error(store: Store) -> None:
    missing = await enqueue(store, "nobody.handles.this", max_attempts=1)
    listed = await enqueue(store, "takes_kwargs", [1, 2], max_attempts=1)
    await drain(store, registry_with(takes_kwargs=lambda **kw: kw))
    job = await store.get_job("default", missing)
    assert job.error is not None and job.error.type == "UnknownTask"
    other = await store.get_job("default", listed)
    assert other.error is not None and "must be a JSON object" in other.error.message


async def test_progress_notes_and_artifacts_are_recorded(store: Store, tmp_path: Path) -> None:
    def build(ctx: JobContext) -> str:
        ctx.progress(0.5, "half way")
        ctx.note("made a file")
        stored = ctx.attach("out.txt", b"hello artifact")
        return stored.sha256

    job_id = await enqueue(store, "build")
    settings = WorkerSettings(artifact_dir=tmp_path / "artifacts")
    await drain(store, registry_with(build=build), settings)
    job = await store.get_job("default", job_id)
    assert job.state is JobState.COMPLETED
    [artifact] = await store.list_artifacts("default", job_id)
    assert artifact.name == "out.txt"
    assert artifact.size == len(b"hello artifact")
    assert artifact.sha256 == job.result
    assert Path(artifact.path).read_bytes() == b"hello artifact"
    types = [e.type for e in await store.list_events("default") if e.job_id == job_id]
    assert types.index("job.progress") < types.index("job.succeeded")
    assert "job.note" in types and "job.artifact" in types


async def test_reports_made_after_a_flush_are_kept(store: Store, tmp_path: Path) -> None:
    async def slow(ctx: JobContext) -> None:
        ctx.note("before")
        await asyncio.sleep(0.5)  # the worker writes what it has meanwhile (every 0.1 s)
        ctx.note("after")
        ctx.progress(0.9, "nearly")

    job_id = await enqueue(store, "slow")
    settings = WorkerSettings(artifact_dir=tmp_path / "artifacts")
    await drain(store, registry_with(slow=slow), settings)
    events = [e for e in await store.list_events("default") if e.job_id == job_id]
    notes = [e.data.get("text") for e in events if e.type == "job.note"]
    assert notes == ["before", "after"]
    assert [e.data.get("message") for e in events if e.type == "job.progress"] == ["nearly"]


async def test_urgent_jobs_start_in_reserved_slots_while_normal_slots_are_busy(
    store: Store,
) -> None:
    release = asyncio.Event()
    started: dict[str, float] = {}

    async def slow(name: str) -> None:
        started[name] = time.monotonic()
        await release.wait()

    async def urgent() -> None:
        started["urgent"] = time.monotonic()

    registry = registry_with(slow=slow, urgent=urgent)
    for i in range(4):
        await enqueue(store, "slow", {"name": f"s{i}"})
    worker = Worker(store, registry, WorkerSettings(concurrency=2, reserved=1, poll_seconds=0.05))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        while len(started) < 2:
            await asyncio.sleep(0.01)
        await enqueue(store, "urgent", priority=0)
        for _ in range(200):
            if "urgent" in started:
                break
            await asyncio.sleep(0.01)
        assert "urgent" in started, "the priority-0 job waited behind the busy slots"
        assert len([n for n in started if n.startswith("s")]) == 2
    finally:
        release.set()
        stop.set()
        await running


async def test_paused_queue_is_not_worked_until_resumed(store: Store) -> None:
    ran: list[int] = []
    job_id = await enqueue(store, "mark", {"n": 1})
    await store.pause_queue("default", "default", True)
    registry = registry_with(mark=lambda n: ran.append(n))
    worker = Worker(store, registry, WorkerSettings(poll_seconds=0.02))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.3)
    assert ran == []
    await store.pause_queue("default", "default", False)
    for _ in range(200):
        if ran:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await running
    assert ran == [1]
    assert (await store.get_job("default", job_id)).state is JobState.COMPLETED


class ClaimCounter:
    """A worker observer counting claims by queue."""

    def __init__(self) -> None:
        self.claims: Counter[str] = Counter()

    def claimed(self, queue: str, count: int, seconds: float) -> None:
        self.claims[queue] += 1

    def ran(self, task: str, outcome: str, seconds: float) -> None:
        pass


async def _run_until(worker: Worker, done: Callable[[], bool], max_seconds: float = 30) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(max_seconds):
            while not done() and not running.done():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"the worker was not there after {max_seconds} s") from None
    finally:
        stop.set()
        await running


async def test_an_empty_queue_is_not_asked_again_while_another_keeps_the_worker_busy(
    store: Store,
) -> None:
    ran: list[int] = []

    async def noop(n: int) -> None:
        ran.append(n)

    await store.enqueue([new_job("noop", {"n": n}) for n in range(300)])
    settings = WorkerSettings(
        queues=("default", "idle"),
        concurrency=5,
        batch_size=5,
        poll_seconds=0.05,
        drained_recheck_seconds=60.0,
    )
    counter = ClaimCounter()
    worker = Worker(store, registry_with(noop=noop), settings, counter)
    await _run_until(worker, lambda: len(ran) == 300)
    assert counter.claims["default"] >= 60  # 300 jobs, 5 at a time
    # asked once at the start, then only when the store woke the worker (at the end)
    assert counter.claims["idle"] <= 10, counter.claims


async def test_a_drained_queue_is_looked_at_again_while_another_keeps_the_worker_busy(
    store: Store,
) -> None:
    order: list[str] = []

    async def noop() -> None:
        order.append("busy")

    async def other() -> None:
        order.append("other")

    await store.enqueue([new_job("noop", {}) for _ in range(2000)])
    settings = WorkerSettings(
        queues=("default", "other"), concurrency=5, batch_size=5, poll_seconds=10.0
    )
    worker = Worker(store, registry_with(noop=noop, other=other), settings)

    async def enqueue_other_once_busy() -> None:
        while len(order) < 100:
            await asyncio.sleep(0.005)
        await enqueue(store, "other", queue="other")

    feeder = asyncio.create_task(enqueue_other_once_busy())
    await _run_until(worker, lambda: len(order) == 2001)
    await feeder
    # rechecked every 50 ms, not left until the busy queue ran dry
    assert order.index("other") < 1800


async def test_a_queue_is_not_starved_while_long_jobs_of_another_fill_the_slots(
    store: Store,
) -> None:
    order: list[str] = []

    async def long(n: int) -> None:
        order.append(f"long{n}")
        await asyncio.sleep(0.3)

    async def other() -> None:
        order.append("other")

    settings = WorkerSettings(
        queues=("default", "other"),
        concurrency=2,
        reserved=1,
        poll_seconds=10.0,
        drained_recheck_seconds=0.2,
    )
    counter = ClaimCounter()
    worker = Worker(store, registry_with(long=long, other=other), settings, counter)

    async def feed() -> None:
        while not (counter.claims["default"] and counter.claims["other"]):
            await asyncio.sleep(0.01)  # both found empty: both drained
        await store.enqueue([new_job("long", {"n": n}) for n in range(8)])
        while len(order) < 2:
            await asyncio.sleep(0.01)  # every normal slot busy for 0.3 s
        await enqueue(store, "other", queue="other")

    feeder = asyncio.create_task(feed())
    await _run_until(worker, lambda: len(order) == 9, max_seconds=20)
    await feeder
    # Its looks while the slots were full could only be urgent-only claims; they did
    # not keep it out of the next free slot: it ran before the 8 long jobs were through.
    assert order.index("other") <= 5, order


async def test_a_wake_up_makes_an_idle_worker_look_at_every_queue(store: Store) -> None:
    ran: list[str] = []
    # no poll for 10 s and no recheck: only the wake-up of the enqueue can start it
    settings = WorkerSettings(
        queues=("first", "second"), poll_seconds=10.0, drained_recheck_seconds=60.0
    )
    worker = Worker(store, registry_with(mark=lambda name: ran.append(name)), settings)

    async def enqueue_later() -> None:
        await asyncio.sleep(0.3)  # both queues have been found empty by then
        await enqueue(store, "mark", {"name": "second"}, queue="second")

    later = asyncio.create_task(enqueue_later())
    await _run_until(worker, lambda: ran == ["second"], max_seconds=10)
    await later
    assert ran == ["second"]


async def test_a_capped_queue_goes_on_as_soon_as_its_finished_jobs_are_written(
    store: Store,
) -> None:
    ran: list[int] = []
    await store.enqueue([new_job("mark", {"n": n}) for n in range(10)])
    await store.limit_queue("default", "default", 1)
    # Polling only every 10 s: each next job must start because the worker wrote the
    # last one's result (freeing the queue's only place), not because a poll came.
    settings = WorkerSettings(concurrency=4, poll_seconds=10.0, heartbeat_seconds=10.0)
    worker = Worker(store, registry_with(mark=lambda n: ran.append(n)), settings)
    await _run_until(worker, lambda: len(ran) == 10, max_seconds=8)
    assert sorted(ran) == list(range(10))


async def test_graceful_shutdown_finishes_quick_jobs_and_releases_slow_ones(store: Store) -> None:
    async def quick() -> str:
        await asyncio.sleep(0.05)
        return "done"

    async def forever() -> None:
        await asyncio.sleep(60)

    quick_id = await enqueue(store, "quick")
    stuck_id = await enqueue(store, "forever", max_attempts=3)
    settings = WorkerSettings(shutdown_grace=0.3, poll_seconds=0.02)
    worker = Worker(store, registry_with(quick=quick, forever=forever), settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    while (await store.get_job("default", stuck_id)).state is not JobState.RUNNING:
        await asyncio.sleep(0.01)
    stop.set()
    await running
    assert (await store.get_job("default", quick_id)).result == "done"
    stuck = await store.get_job("default", stuck_id)
    assert stuck.state is JobState.AVAILABLE
    [attempt] = await store.list_attempts("default", stuck_id)
    assert attempt.outcome == "lost"


async def test_cancelling_a_running_job_flags_its_context_and_refuses_its_result(
    store: Store,
) -> None:
    flagged = asyncio.Event()

    async def watch(ctx: JobContext) -> str:
        while not ctx.cancelled:
            await asyncio.sleep(0.01)
        flagged.set()
        return "finished anyway"

    job_id = await enqueue(store, "watch")
    settings = WorkerSettings(heartbeat_seconds=0.05, lease_seconds=5, poll_seconds=0.02)
    worker = Worker(store, registry_with(watch=watch), settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(10):  # a stuck step fails here, naming itself
        while (await store.get_job("default", job_id)).state is not JobState.RUNNING:
            assert not running.done(), running
            await asyncio.sleep(0.01)
    await store.cancel_job("default", job_id, "changed my mind")
    await asyncio.wait_for(flagged.wait(), 5)
    stop.set()
    async with asyncio.timeout(10):
        await running
    job = await store.get_job("default", job_id)
    assert job.state is JobState.CANCELLED
    assert job.result is None
