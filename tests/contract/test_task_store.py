"""The TaskStore contract, and jobs and attempts recording their task version: every
case runs on SQLite and on PostgreSQL.

Times come from the ``clock`` fixture (whole seconds), so they round-trip exactly.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from conveyor.domain.accounts import Tenant, TenantStatus
from conveyor.domain.errors import NotFound
from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job, JobFilter, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from conveyor.domain.tasks import TaskChange, TaskVersion
from conveyor.services.jobs import JobService
from conveyor.services.tasks import TaskCatalog
from conveyor.store import accounts_for, tasks_for
from conveyor.store.protocol import Store
from conveyor.store.tasks_protocol import TaskStore
from tests.contract.conftest import FakeClock

pytestmark = pytest.mark.anyio

ACME = "acme"
GLOBEX = "globex"
ALICE = "user:alice@acme.test"


@pytest.fixture
async def tasks(store: Store, clock: FakeClock) -> TaskStore:
    """The task store, with tenants acme and globex."""
    accounts = accounts_for(store)
    for tenant_id in (ACME, GLOBEX):
        await accounts.create_tenant(
            Tenant(tenant_id, tenant_id.title(), TenantStatus.ACTIVE, False, clock())
        )
    return tasks_for(store)


def change(name: str = "report.build", **settings: object) -> TaskChange:
    return TaskChange(name=name, **settings)  # type: ignore[arg-type]


# -- versions ----------------------------------------------------------------------------


async def test_a_first_change_is_version_1_with_every_setting_kept(
    tasks: TaskStore, clock: FakeClock
) -> None:
    settings = change(
        queue="reports",
        priority=1,
        max_attempts=7,
        timeout=12.5,
        immediate=True,
        description="monthly",
    )
    stored = await tasks.add_version(ACME, settings, ALICE, clock())
    assert stored == TaskVersion(
        tenant_id=ACME,
        name="report.build",
        version=1,
        queue="reports",
        priority=1,
        max_attempts=7,
        timeout=12.5,
        immediate=True,
        description="monthly",
        created_at=clock(),
        created_by=ALICE,
    )
    assert await tasks.current_version(ACME, "report.build") == stored


async def test_each_change_makes_the_next_version_and_the_newest_is_current(
    tasks: TaskStore, clock: FakeClock
) -> None:
    first = await tasks.add_version(ACME, change(priority=5), ALICE, clock())
    clock.advance(10)
    second = await tasks.add_version(ACME, change(priority=2, timeout=None), ALICE, clock())
    assert (first.version, second.version) == (1, 2)
    assert second.timeout is None and second.created_at == clock()
    assert await tasks.current_version(ACME, "report.build") == second
    assert await tasks.list_versions(ACME, "report.build") == [second, first]


async def test_a_task_without_versions_has_no_current_one(tasks: TaskStore) -> None:
    assert await tasks.current_version(ACME, "never.changed") is None
    assert await tasks.list_versions(ACME, "never.changed") == []
    assert await tasks.list_tasks(ACME) == []


async def test_the_task_list_holds_the_newest_version_of_each_task_by_name(
    tasks: TaskStore, clock: FakeClock
) -> None:
    await tasks.add_version(ACME, change("b.task", priority=4), ALICE, clock())
    newest_b = await tasks.add_version(ACME, change("b.task", priority=3), ALICE, clock())
    only_a = await tasks.add_version(ACME, change("a.task"), ALICE, clock())
    assert await tasks.list_tasks(ACME) == [only_a, newest_b]


async def test_tenants_number_and_see_only_their_own_versions(
    tasks: TaskStore, clock: FakeClock
) -> None:
    await tasks.add_version(ACME, change(queue="acme-q"), ALICE, clock())
    await tasks.add_version(ACME, change(queue="acme-q2"), ALICE, clock())
    theirs = await tasks.add_version(GLOBEX, change(queue="globex-q"), "user:bob", clock())
    assert theirs.version == 1
    assert await tasks.list_tasks(GLOBEX) == [theirs]
    assert await tasks.list_versions(GLOBEX, "report.build") == [theirs]
    assert [v.queue for v in await tasks.list_versions(ACME, "report.build")] == [
        "acme-q2",
        "acme-q",
    ]


async def test_concurrent_changes_of_one_task_get_distinct_numbers(
    tasks: TaskStore, clock: FakeClock
) -> None:
    made = await asyncio.gather(
        tasks.add_version(ACME, change(priority=1), ALICE, clock()),
        tasks.add_version(ACME, change(priority=2), ALICE, clock()),
    )
    assert sorted(v.version for v in made) == [1, 2]
    assert len(await tasks.list_versions(ACME, "report.build")) == 2


async def test_a_change_for_a_missing_tenant_is_not_found(
    tasks: TaskStore, clock: FakeClock
) -> None:
    with pytest.raises(NotFound, match="nowhere"):
        await tasks.add_version("nowhere", change(), ALICE, clock())


async def test_deleting_a_tenant_deletes_its_task_versions(
    store: Store, tasks: TaskStore, clock: FakeClock
) -> None:
    await tasks.add_version(ACME, change(), ALICE, clock())
    kept = await tasks.add_version(GLOBEX, change(), "user:bob", clock())
    accounts = accounts_for(store)
    await accounts.delete_tenant(ACME)
    await accounts.create_tenant(Tenant(ACME, "Acme", TenantStatus.ACTIVE, False, clock()))
    assert await tasks.list_tasks(ACME) == []
    assert (await tasks.add_version(ACME, change(), ALICE, clock())).version == 1
    assert await tasks.list_tasks(GLOBEX) == [kept]


# -- jobs and attempts record the version ------------------------------------------------


async def _job(store: Store, clock: FakeClock, version: int | None, **fields: object) -> Job:
    [job] = await store.enqueue(
        [new_job("report.build", tenant_id=ACME, now=clock(), task_version=version, **fields)]  # type: ignore[arg-type]
    )
    return job


async def _claim(store: Store) -> Job:
    [job] = await store.claim(ACME, "default", "w", 1, 60.0)
    return job


async def test_a_job_keeps_the_task_version_it_was_enqueued_with(
    store: Store, tasks: TaskStore, clock: FakeClock
) -> None:
    versioned = await _job(store, clock, 3)
    plain = await _job(store, clock, None)
    assert versioned.task_version == 3 and plain.task_version is None
    assert (await store.get_job(ACME, versioned.id)).task_version == 3
    listed = await store.list_jobs(ACME, JobFilter())
    assert {j.id: j.task_version for j in listed} == {versioned.id: 3, plain.id: None}
    assert (await _claim(store)).task_version == 3


async def test_each_attempt_records_the_version_that_ran_it(
    store: Store, tasks: TaskStore, clock: FakeClock
) -> None:
    job = await _job(store, clock, 1, max_attempts=5)
    running = await _claim(store)
    finish = Finish(job.id, running.attempt, JobState.COMPLETED, EventType.JOB_SUCCEEDED)
    assert await store.finish([finish]) == [True]
    await store.retry_job(ACME, job.id, task_version=2)
    again = await _claim(store)
    assert again.task_version == 2
    clock.advance(120)  # the lease expires: the attempt is recorded as lost
    assert await store.rescue_expired() == [job.id]
    await _claim(store)
    await store.cancel_job(ACME, job.id, "stop")
    attempts = await store.list_attempts(ACME, job.id)
    assert [(a.outcome, a.task_version) for a in attempts] == [
        ("completed", 1),
        ("lost", 2),
        ("cancelled", 2),
    ]


async def test_a_reprocess_sets_the_version_given_and_keeps_it_when_none_is(
    store: Store, tasks: TaskStore, clock: FakeClock
) -> None:
    job = await _job(store, clock, 1)
    await store.cancel_job(ACME, job.id, "not now")
    assert (await store.get_job(ACME, job.id)).task_version == 1
    assert (await store.retry_job(ACME, job.id, task_version=4)).task_version == 4
    await store.cancel_job(ACME, job.id, "not now")
    assert (await store.retry_job(ACME, job.id)).task_version == 4


# -- the catalog enqueue reads through ---------------------------------------------------


class CountingTasks:
    """The real task store, counting the current-version reads that reach it."""

    def __init__(self, inner: TaskStore) -> None:
        self.inner = inner
        self.reads: list[str] = []

    async def add_version(
        self, tenant_id: str, change: TaskChange, created_by: str, now: datetime
    ) -> TaskVersion:
        return await self.inner.add_version(tenant_id, change, created_by, now)

    async def current_version(self, tenant_id: str, name: str) -> TaskVersion | None:
        self.reads.append(name)
        return await self.inner.current_version(tenant_id, name)

    async def list_versions(self, tenant_id: str, name: str) -> list[TaskVersion]:
        return await self.inner.list_versions(tenant_id, name)

    async def list_tasks(self, tenant_id: str) -> list[TaskVersion]:
        return await self.inner.list_tasks(tenant_id)


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_catalog_reads_a_task_once_per_ttl_and_again_after_a_local_change(
    tasks: TaskStore, clock: FakeClock
) -> None:
    counting = CountingTasks(tasks)
    ticks = Ticks()
    catalog = TaskCatalog(counting, ttl=1.0, clock=ticks)
    assert await catalog.current(ACME, "report.build") is None
    assert await catalog.current(ACME, "report.build") is None  # absence is cached too
    assert counting.reads == ["report.build"]
    made = await counting.add_version(ACME, change(), ALICE, clock())
    catalog.forget(ACME, "report.build")
    assert await catalog.current(ACME, "report.build") == made
    assert await catalog.current(ACME, "report.build") == made
    assert len(counting.reads) == 2
    ticks.now += 1.5
    assert await catalog.current(ACME, "report.build") == made
    assert len(counting.reads) == 3
    assert await catalog.current(GLOBEX, "report.build") is None  # per tenant


async def test_a_batch_enqueue_looks_each_distinct_task_up_once(
    store: Store, tasks: TaskStore, clock: FakeClock
) -> None:
    counting = CountingTasks(tasks)
    catalog = TaskCatalog(counting, ttl=0.0)  # nothing cached: every read reaches the store
    await tasks.add_version(ACME, change("a.task", queue="qa", priority=1), ALICE, clock())
    jobs = JobService(store, ACME, catalog=catalog)
    requests = [(name, None, None) for name in ("a.task", "b.task", "a.task", "a.task", "b.task")]
    made = await jobs.enqueue_many(requests)
    assert sorted(counting.reads) == ["a.task", "b.task"]
    assert [(j.task, j.queue, j.priority, j.task_version) for j in made[:2]] == [
        ("a.task", "qa", 1, 1),
        ("b.task", "default", 5, None),
    ]
