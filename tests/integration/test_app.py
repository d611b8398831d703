"""The Conveyor app object: declared tasks, the sync facade, and a worker in the same process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from conveyor import Conveyor, JobContext, JobState, SchemaOutdated
from conveyor.store import store_from_url

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(migrated_url: str, tmp_path: Path) -> Conveyor:
    """An app on a migrated database of each kind."""
    return Conveyor(migrated_url, data_dir=tmp_path / "data", sqlite_synchronous="NORMAL")


def test_sync_enqueue_fills_in_task_defaults_and_is_idempotent(app: Conveyor) -> None:
    @app.task(name="mail.send", queue="mail", priority=1, max_attempts=7, timeout=30)
    def send(to: str) -> None:
        return None

    try:
        job = app.enqueue("mail.send", {"to": "ana@example.com"}, message_id="signup-1")
        again = app.enqueue("mail.send", {"to": "someone else"}, message_id="signup-1")
        assert (job.queue, job.priority, job.max_attempts, job.timeout) == ("mail", 1, 7, 30.0)
        assert again.id == job.id
        assert again.payload == {"to": "ana@example.com"}
        assert app.get_job(job.id).state is JobState.AVAILABLE
        overridden = app.enqueue("mail.send", {"to": "x"}, priority=9, queue="bulk")
        assert (overridden.queue, overridden.priority) == ("bulk", 9)
        batch = app.enqueue_many([("mail.send", {"to": f"{i}@x"}, None) for i in range(3)])
        assert len({j.id for j in batch}) == 3
    finally:
        app.close()


async def test_sync_handler_can_enqueue_follow_up_work_through_the_app(app: Conveyor) -> None:
    @app.task(name="parent")
    def parent(n: int) -> int:
        return app.enqueue("child", {"n": n + 1}).id

    @app.task(name="child")
    async def child(n: int) -> int:
        return n * 10

    parent_job = await app.aio.enqueue("parent", {"n": 1})
    stop = asyncio.Event()
    worker = asyncio.create_task(app.aio.run_worker(app.worker_settings(poll_seconds=0.05), stop))
    try:
        for _ in range(300):
            done = await app.aio.get_job(parent_job.id)
            if done.state is JobState.COMPLETED:
                child_job = await app.aio.get_job(done.result)
                if child_job.state is JobState.COMPLETED:
                    break
            await asyncio.sleep(0.02)
        assert child_job.result == 20
    finally:
        stop.set()
        await worker
        await app.aio.close()


async def test_a_cpu_bound_sync_handler_keeps_its_lease(app: Conveyor) -> None:
    @app.task(name="crunch", max_attempts=1)
    def crunch(seconds: float, ctx: JobContext) -> int:
        end = time.monotonic() + seconds
        loops = 0
        while time.monotonic() < end:
            loops += sum(range(1000)) and 1
        return ctx.attempt

    job = await app.aio.enqueue("crunch", {"seconds": 2.5})
    settings = app.worker_settings(lease_seconds=1.0, heartbeat_seconds=0.2, poll_seconds=0.05)
    stop = asyncio.Event()
    worker = asyncio.create_task(app.aio.run_worker(settings, stop))
    try:
        for _ in range(400):
            if (await app.aio.get_job(job.id)).state is JobState.COMPLETED:
                break
            await asyncio.sleep(0.02)
        finished = await app.aio.get_job(job.id)
        assert finished.state is JobState.COMPLETED
        assert finished.result == 1
        store = await app.aio.store()
        assert [a.outcome for a in await store.list_attempts("default", job.id)] == ["completed"]
    finally:
        stop.set()
        await worker
        await app.aio.close()


def test_an_app_on_an_old_schema_refuses_with_the_upgrade_command(tmp_path: Path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with pytest.raises(SchemaOutdated, match="conveyor db upgrade"):
            app.enqueue("anything")
    finally:
        app.close()


async def test_store_from_url_rejects_unknown_schemes() -> None:
    from conveyor import InvalidInput

    with pytest.raises(InvalidInput, match="database_url"):
        store_from_url("mysql://nope")


async def test_enqueue_from_the_app_takes_the_stored_task_version(app: Conveyor) -> None:
    from conveyor.domain.jobs import utcnow
    from conveyor.domain.tasks import TaskChange
    from conveyor.store import tasks_for

    @app.task(name="insight.score", queue="common", priority=5)
    def score() -> None:
        return None

    store = await app.aio.store()
    try:
        change = TaskChange(name="insight.score", queue="urgent", priority=0, immediate=True)
        await tasks_for(store).add_version("default", change, "user:ops", utcnow())
        job = await app.aio.enqueue("insight.score", {})
        assert (job.queue, job.priority, job.immediate, job.task_version) == ("urgent", 0, True, 1)
        explicit = await app.aio.enqueue("insight.score", {}, queue="common")
        assert explicit.queue == "common"
    finally:
        await app.aio.close()
