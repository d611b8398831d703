"""Schedules declared in code with ``@app.periodic``: declaration errors, the sync at
worker start (no duplicates, code-owned), and a worker that fires them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor import Conveyor, JobState
from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import Conflict, InvalidInput
from conveyor.domain.jobs import DEFAULT_TENANT, JobFilter
from conveyor.domain.schedules import OverlapPolicy, ScheduleSource, schedule_spec
from conveyor.domain.timing import cron
from conveyor.runtime.periodic import sync_declared
from conveyor.services.schedules import ScheduleService
from conveyor.store import schedules_for, store_from_url

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(migrated_url: str, tmp_path: Path) -> Conveyor:
    """An app on a migrated database of each kind."""
    return Conveyor(migrated_url, data_dir=tmp_path / "data", sqlite_synchronous="NORMAL")


def test_a_periodic_task_is_declared_with_its_schedule(app: Conveyor) -> None:
    @app.periodic(cron="0 19 * * *", tz="America/Sao_Paulo", payload={"kind": "daily"})
    @app.task(name="reports.daily")
    def daily(kind: str) -> None:
        return None

    @app.periodic(every="15m", name="reports.refresh", overlap="skip")
    @app.task(name="reports.refresh-cache")
    def refresh() -> None:
        return None

    first, second = app.periodics
    assert (first.name, first.job.task, first.job.payload) == (
        "reports.daily",
        "reports.daily",
        {"kind": "daily"},
    )
    assert first.timing.describe() == "At 19:00 every day (America/Sao_Paulo)"
    assert (second.timing.interval, second.overlap) == (900.0, OverlapPolicy.SKIP)


def test_declaration_mistakes_are_named_at_import_time(app: Conveyor) -> None:
    with pytest.raises(InvalidInput, match="minute field: 61 is out of range 0-59"):
        app.periodic(cron="61 * * * *")
    with pytest.raises(InvalidInput, match="exactly one of cron= or every="):
        app.periodic(cron="* * * * *", every=60)
    with pytest.raises(InvalidInput, match="exactly one of cron= or every="):
        app.periodic()

    def plain() -> None:
        return None

    with pytest.raises(InvalidInput, match=r"put @app\.periodic above @app\.task"):
        app.periodic(every=60)(plain)

    @app.periodic(every=60)
    @app.task(name="twice")
    def twice() -> None:
        return None

    with pytest.raises(InvalidInput, match="declared twice"):
        app.periodic(every=120)(twice)


async def test_syncing_creates_once_updates_on_change_and_keeps_pauses(app: Conveyor) -> None:
    store = store_from_url(app.database_url, sqlite_synchronous="NORMAL")
    await store.open()
    try:
        now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
        spec = schedule_spec("nightly", cron("0 2 * * *"), "backup")
        report = await sync_declared(store, DEFAULT_TENANT, [spec], lambda: now)
        assert report.created == ["nightly"]
        schedules = schedules_for(store)
        made = await schedules.find(DEFAULT_TENANT, "nightly")
        assert made is not None
        assert made.source is ScheduleSource.CODE
        # A restart with the same code changes nothing, not even the next fire time.
        later = now + timedelta(hours=3)
        again = await sync_declared(store, DEFAULT_TENANT, [spec], lambda: later)
        assert again.unchanged == ["nightly"]
        assert await schedules.get(DEFAULT_TENANT, made.id) == made
        # The API may pause a code-owned schedule but not edit it.
        api = ScheduleService(schedules, Principal(DEFAULT_TENANT, frozenset(Scope)), lambda: now)
        paused = await api.set_enabled(made.id, False)
        with pytest.raises(Conflict, match="declared in code"):
            await api.update(made.id, {"description": "edited"})
        # Changed code updates it, and the pause survives.
        moved = schedule_spec("nightly", cron("0 3 * * *"), "backup")
        changed = await sync_declared(store, DEFAULT_TENANT, [moved], lambda: later)
        assert changed.updated == ["nightly"]
        now_stored = await schedules.get(DEFAULT_TENANT, made.id)
        assert now_stored.spec.timing.cron == "0 3 * * *"
        assert not now_stored.spec.enabled
        assert now_stored.revision == paused.revision + 1
        # A name taken through the API is left alone.
        await api.create(schedule_spec("manual", cron("0 4 * * *"), "backup"))
        taken = schedule_spec("manual", cron("0 5 * * *"), "backup")
        refused = await sync_declared(store, DEFAULT_TENANT, [taken], lambda: later)
        assert refused.refused == ["manual"]
    finally:
        await store.close()


async def test_a_worker_syncs_and_fires_its_periodic_tasks(app: Conveyor) -> None:
    seen: list[int] = []

    @app.periodic(every=1)
    @app.task(name="tick")
    def tick() -> None:
        seen.append(1)

    stop = asyncio.Event()
    settings = app.worker_settings(poll_seconds=0.05)
    worker = asyncio.create_task(app.aio.run_worker(settings, stop, scheduler=True))
    try:
        for _ in range(100):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await worker
    assert len(seen) >= 2
    store = await app.aio.store()
    jobs = await store.list_jobs(DEFAULT_TENANT, JobFilter(task="tick"))
    assert all(job.message_id and job.message_id.startswith("schedule:") for job in jobs)
    assert len({job.message_id for job in jobs}) == len(jobs)
    assert JobState.COMPLETED in {job.state for job in jobs}
    await app.aio.close()
