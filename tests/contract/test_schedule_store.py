"""The ScheduleStore contract and the Scheduler on it: every case runs on SQLite and
on PostgreSQL, with a clock the test moves (no real minutes pass).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.domain.accounts import Principal, Scope, Tenant, TenantStatus
from conveyor.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job, JobFilter
from conveyor.domain.lifecycle import JobState
from conveyor.domain.schedules import (
    MisfirePolicy,
    OverlapPolicy,
    RunOutcome,
    ScheduleSource,
    ScheduleSpec,
    message_id,
    schedule_spec,
)
from conveyor.domain.timing import cron, every, once
from conveyor.loops.scheduler import Scheduler
from conveyor.services.jobs import JobService
from conveyor.services.schedules import ScheduleService
from conveyor.store import accounts_for, schedules_for
from conveyor.store.leadership import SoleLeadership
from conveyor.store.protocol import Store
from conveyor.store.schedules_protocol import ScheduleStore
from tests.contract.conftest import FakeClock

pytestmark = pytest.mark.anyio

ACME = "acme"
GLOBEX = "globex"
ALL_SCOPES = frozenset(Scope)
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def schedules(store: Store, clock: FakeClock) -> ScheduleStore:
    """The schedule store, with tenants acme and globex; the clock at START."""
    clock.now = START
    accounts = accounts_for(store)
    for tenant_id in (ACME, GLOBEX):
        await accounts.create_tenant(
            Tenant(tenant_id, tenant_id.title(), TenantStatus.ACTIVE, False, clock())
        )
    return schedules_for(store)


def service(
    schedules: ScheduleStore,
    clock: FakeClock,
    tenant: str = ACME,
    scopes: frozenset[Scope] = ALL_SCOPES,
) -> ScheduleService:
    principal = Principal(tenant_id=tenant, scopes=scopes, email=f"owner@{tenant}.test")
    return ScheduleService(schedules, principal, clock, shell_tasks=True)


def scheduler(store: Store, schedules: ScheduleStore, clock: FakeClock) -> Scheduler:
    return Scheduler(
        schedules,
        lambda tenant, created_by=None: JobService(store, tenant, created_by=created_by),
        SoleLeadership(),
        clock,
        interval=1.0,
    )


def minutely(name: str = "tick", **fields: object) -> ScheduleSpec:
    return schedule_spec(name, cron("* * * * *"), "report.build", {"n": 1}, **fields)  # type: ignore[arg-type]


async def scheduled_jobs(store: Store, tenant: str = ACME) -> list[tuple[str | None, JobState]]:
    jobs = await store.list_jobs(tenant, JobFilter(newest_first=False, limit=1000))
    return [(job.message_id, job.state) for job in jobs]


# -- the store ---------------------------------------------------------------------------


async def test_a_schedule_round_trips_with_every_field(
    schedules: ScheduleStore, clock: FakeClock
) -> None:
    spec = schedule_spec(
        "summary",
        cron("0 19 * * *", "America/Sao_Paulo"),
        "email.summary",
        {"to": ["a@b.test"], "n": [1, 2.5, None]},
        queue="mail",
        priority=2,
        assignee="carl@acme.test",
        enabled=True,
        start_at=START + timedelta(days=1),
        end_at=START + timedelta(days=30),
        jitter=5,
        description="daily summary",
        misfire=MisfirePolicy.RUN_ALL,
        overlap=OverlapPolicy.QUEUE,
        catchup_limit=7,
    )
    made = await service(schedules, clock).create(spec)
    again = await schedules.get(ACME, made.id)
    assert again == made
    assert again.spec == spec
    assert again.source is ScheduleSource.API
    assert again.owner == "user:owner@acme.test"
    assert again.revision == 1
    # 19:00 in São Paulo (UTC-3) on the start date.
    assert again.next_fire_at == datetime(2026, 3, 2, 22, 0, tzinfo=UTC)


async def test_names_are_unique_per_tenant_only(schedules: ScheduleStore, clock: FakeClock) -> None:
    await service(schedules, clock).create(minutely("tick"))
    with pytest.raises(Conflict, match="already exists"):
        await service(schedules, clock).create(minutely("tick"))
    other = await service(schedules, clock, GLOBEX).create(minutely("tick"))
    assert other.tenant_id == GLOBEX


async def test_tenants_never_see_each_others_schedules(
    schedules: ScheduleStore, clock: FakeClock
) -> None:
    mine = await service(schedules, clock).create(minutely())
    theirs = service(schedules, clock, GLOBEX)
    with pytest.raises(NotFound):
        await theirs.get(mine.id)
    with pytest.raises(NotFound):
        await theirs.delete(mine.id)
    with pytest.raises(NotFound):
        await theirs.update(mine.id, {"description": "mine now"})
    assert await theirs.list_schedules() == []
    assert await theirs.find("tick") is None


async def test_an_edit_based_on_a_stale_read_changes_nothing(
    schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely())
    first = await schedules.update(made, made.spec, made.source, made.next_fire_at, clock())
    assert first.revision == 2
    with pytest.raises(Conflict, match="changed by someone else"):
        await schedules.update(made, made.spec, made.source, made.next_fire_at, clock())
    with pytest.raises(Conflict, match="revision 2, not 1"):
        await service(schedules, clock).update(made.id, {"description": "x"}, revision=1)


async def test_editing_the_timing_recomputes_the_next_fire_time(
    schedules: ScheduleStore, clock: FakeClock
) -> None:
    svc = service(schedules, clock)
    made = await svc.create(minutely())
    assert made.next_fire_at == START + timedelta(minutes=1)
    changed = await svc.update(made.id, {"timing": cron("0 19 * * *", "Europe/Berlin")})
    assert changed.next_fire_at == datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    assert changed.updated_at == clock()


async def test_only_owners_and_admins_schedule_shell_jobs(
    schedules: ScheduleStore, clock: FakeClock
) -> None:
    member = service(schedules, clock, scopes=frozenset({Scope.JOBS_READ, Scope.JOBS_WRITE}))
    spec = schedule_spec("backup", cron("0 3 * * *"), "shell", {"command": "true"})
    with pytest.raises(PermissionDenied, match="shell"):
        await member.create(spec)
    assert (await service(schedules, clock).create(spec)).name == "backup"
    switched_off = ScheduleService(schedules, Principal(ACME, ALL_SCOPES), clock, shell_tasks=False)
    with pytest.raises(InvalidInput, match="shell tasks are disabled"):
        await switched_off.create(schedule_spec("other", cron("0 3 * * *"), "shell"))


async def test_a_one_off_in_the_past_is_refused(schedules: ScheduleStore, clock: FakeClock) -> None:
    spec = schedule_spec("late", once(START - timedelta(minutes=1)), "report.build")
    with pytest.raises(Exception, match="in the past"):
        await service(schedules, clock).create(spec)


async def test_deleting_a_tenant_deletes_its_schedules_and_runs(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely())
    clock.advance(60)
    assert await scheduler(store, schedules, clock).run_once() == 1
    await accounts_for(store).delete_tenant(ACME)
    with pytest.raises(NotFound):
        await schedules.get(ACME, made.id)
    assert await schedules.runs_between(ACME, START, clock() + timedelta(1), 10) == []


# -- firing ------------------------------------------------------------------------------


async def test_a_due_schedule_fires_once_with_its_idempotency_key(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely(queue="reports", priority=1))
    loop = scheduler(store, schedules, clock)
    assert await loop.run_once() == 0  # not due yet
    clock.advance(60)
    assert await loop.run_once() == 1
    assert await loop.run_once() == 0  # the same fire time never fires twice
    fire_at = START + timedelta(minutes=1)
    [job] = await store.list_jobs(ACME, JobFilter())
    assert (job.message_id, job.queue, job.priority, job.payload) == (
        message_id(made.id, fire_at),
        "reports",
        1,
        {"n": 1},
    )
    assert job.run_at == fire_at
    assert job.key == made.name
    assert job.created_by == "owner@acme.test"  # the schedule's owner made it
    stored = await schedules.get(ACME, made.id)
    assert (stored.last_fire_at, stored.last_job_id) == (fire_at, job.id)
    assert stored.next_fire_at == fire_at + timedelta(minutes=1)
    [run] = await schedules.list_runs(ACME, made.id, 10)
    assert (run.fire_at, run.outcome, run.job_id, run.job_state) == (
        fire_at,
        RunOutcome.ENQUEUED,
        job.id,
        JobState.AVAILABLE,
    )
    fired = [e for e in await store.list_events(ACME) if e.type == EventType.SCHEDULE_FIRED]
    assert [(e.job_id, e.data["schedule_id"]) for e in fired] == [(job.id, made.id)]


async def test_two_schedulers_firing_the_same_time_make_one_job(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely())
    clock.advance(60)
    first, second = scheduler(store, schedules, clock), scheduler(store, schedules, clock)
    # Both read the schedule before either records the firing (a leader change).
    [(seen, running)] = await schedules.due(clock(), 10)
    assert await first.fire(seen, running, clock()) == 1
    assert await second.fire(seen, running, clock()) == 1  # finds the first job
    assert len(await scheduled_jobs(store)) == 1
    assert len(await schedules.list_runs(ACME, made.id, 10)) == 1
    fired = [e for e in await store.list_events(ACME) if e.type == EventType.SCHEDULE_FIRED]
    assert len(fired) == 1


async def test_after_downtime_run_once_runs_the_latest_missed_time_only(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely())
    clock.advance(10 * 60 + 5)  # ten fire times missed, all beyond the grace
    assert await scheduler(store, schedules, clock).run_once() == 1
    runs = await schedules.list_runs(ACME, made.id, 100)
    assert [r.outcome for r in runs].count(RunOutcome.SKIPPED) == 9
    assert runs[0].outcome is RunOutcome.ENQUEUED
    assert runs[0].fire_at == START + timedelta(minutes=10)
    assert (await schedules.get(ACME, made.id)).next_fire_at == START + timedelta(minutes=11)


async def test_after_downtime_run_all_runs_each_missed_time_up_to_the_limit(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(
        minutely(misfire=MisfirePolicy.RUN_ALL, catchup_limit=4)
    )
    clock.advance(10 * 60 + 5)
    assert await scheduler(store, schedules, clock).run_once() == 4
    runs = await schedules.list_runs(ACME, made.id, 100)
    assert [r.fire_at for r in runs] == [START + timedelta(minutes=m) for m in (10, 9, 8, 7)]


async def test_after_downtime_skip_runs_only_what_is_on_time(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely(misfire=MisfirePolicy.SKIP))
    clock.advance(5 * 60 + 5)  # 12:05 is 5 s late (within the grace), 12:01-12:04 missed
    assert await scheduler(store, schedules, clock).run_once() == 1
    assert await scheduled_jobs(store) == [
        (message_id(made.id, START + timedelta(minutes=5)), JobState.AVAILABLE)
    ]
    runs = await schedules.list_runs(ACME, made.id, 100)
    missed = [r for r in runs if r.outcome is RunOutcome.SKIPPED]
    assert [r.fire_at.minute for r in missed] == [4, 3, 2, 1]
    assert all("misfire policy skip" in r.reason for r in missed)


async def test_overlap_skip_records_the_firing_while_the_last_job_runs(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely(overlap=OverlapPolicy.SKIP))
    loop = scheduler(store, schedules, clock)
    clock.advance(60)
    assert await loop.run_once() == 1
    [claimed] = await store.claim(ACME, "default", "w1", 10, 300)
    clock.advance(60)
    assert await loop.run_once() == 0
    [latest, _] = await schedules.list_runs(ACME, made.id, 10)
    assert latest.outcome is RunOutcome.SKIPPED
    assert "still running" in latest.reason
    await store.cancel_job(ACME, claimed.id, "done with it")
    clock.advance(60)
    assert await loop.run_once() == 1


async def test_overlap_queue_starts_the_held_firing_when_the_last_job_ends(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely(overlap=OverlapPolicy.QUEUE))
    loop = scheduler(store, schedules, clock)
    clock.advance(60)
    assert await loop.run_once() == 1
    [claimed] = await store.claim(ACME, "default", "w1", 10, 300)
    clock.advance(60)
    assert await loop.run_once() == 0
    held = await schedules.get(ACME, made.id)
    assert held.pending == (START + timedelta(minutes=2),)
    assert await schedules.due(clock(), 10) == []  # nothing to do while the job runs
    await store.cancel_job(ACME, claimed.id, "done with it")
    clock.advance(5)
    assert await loop.run_once() == 1
    jobs = await scheduled_jobs(store)
    assert jobs[-1][0] == message_id(made.id, START + timedelta(minutes=2))
    assert (await schedules.get(ACME, made.id)).pending == ()


async def test_a_paused_schedule_does_not_fire_and_resumes_from_now(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    svc = service(schedules, clock)
    made = await svc.create(minutely())
    await svc.set_enabled(made.id, False)
    clock.advance(10 * 60)
    loop = scheduler(store, schedules, clock)
    assert await loop.run_once() == 0
    resumed = await svc.set_enabled(made.id, True)
    assert resumed.next_fire_at == clock() + timedelta(minutes=1)
    assert await loop.run_once() == 0  # nothing made up for the pause


async def test_a_one_off_fires_once_and_then_never(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(
        schedule_spec("once", once(START + timedelta(minutes=5)), "report.build")
    )
    loop = scheduler(store, schedules, clock)
    clock.advance(5 * 60)
    assert await loop.run_once() == 1
    clock.advance(3600)
    assert await loop.run_once() == 0
    assert (await schedules.get(ACME, made.id)).next_fire_at is None


async def test_a_job_that_cannot_be_made_is_recorded_and_the_schedule_moves_on(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    made = await service(schedules, clock).create(minutely())
    clock.advance(60)
    refusing = lambda tenant, created_by=None: RefusingJobs(store, tenant)  # noqa: E731
    loop = Scheduler(schedules, refusing, SoleLeadership(), clock)
    assert await loop.run_once() == 0
    [run] = await schedules.list_runs(ACME, made.id, 10)
    assert (run.outcome, run.reason, run.job_id) == (RunOutcome.FAILED, "task: refused", None)
    assert (await schedules.get(ACME, made.id)).next_fire_at == START + timedelta(minutes=2)
    skipped = [e for e in await store.list_events(ACME) if e.type == EventType.SCHEDULE_SKIPPED]
    assert skipped[0].data["outcome"] == "failed"


class RefusingJobs(JobService):
    """A job service whose enqueue is refused (as a disabled task would be)."""

    async def enqueue(self, *args: Any, **kwargs: Any) -> Job:
        raise InvalidInput("task", "refused")


async def test_the_next_fire_time_is_the_earliest_enabled_one(
    schedules: ScheduleStore, clock: FakeClock
) -> None:
    svc = service(schedules, clock)
    assert await schedules.next_fire_at() is None
    await svc.create(schedule_spec("hourly", cron("0 * * * *"), "report.build"))
    fast = await svc.create(schedule_spec("fast", every(30), "report.build"))
    assert await schedules.next_fire_at() == START + timedelta(seconds=30)
    await svc.set_enabled(fast.id, False)
    assert await schedules.next_fire_at() == START + timedelta(hours=1)


async def test_the_calendar_lists_past_runs_and_planned_ones(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    svc = service(schedules, clock)
    made = await svc.create(schedule_spec("five", cron("*/5 * * * *"), "report.build"))
    clock.advance(5 * 60)
    await scheduler(store, schedules, clock).run_once()
    calendar = await svc.calendar(START, START + timedelta(minutes=20))
    got = [(o.at - START, o.planned, o.outcome) for o in calendar.occurrences]
    assert got == [
        (timedelta(minutes=5), False, RunOutcome.ENQUEUED),
        (timedelta(minutes=10), True, None),
        (timedelta(minutes=15), True, None),
    ]
    assert calendar.occurrences[0].job_state is JobState.AVAILABLE
    assert calendar.occurrences[0].schedule == made.name
    assert not calendar.truncated
    small = await svc.calendar(START, START + timedelta(hours=2), limit=3)
    assert small.truncated
    assert len(small.occurrences) == 3


async def test_a_one_off_that_fired_can_still_be_paused_and_renamed(
    store: Store, schedules: ScheduleStore, clock: FakeClock
) -> None:
    svc = service(schedules, clock)
    made = await svc.create(
        schedule_spec("once", once(START + timedelta(minutes=5)), "report.build")
    )
    clock.advance(5 * 60)
    assert await scheduler(store, schedules, clock).run_once() == 1
    paused = await svc.set_enabled(made.id, False)
    assert not paused.spec.enabled
    renamed = await svc.update(made.id, {"description": "done"})
    assert renamed.spec.description == "done"
    with pytest.raises(InvalidInput, match="at: is in the past"):
        await svc.update(made.id, {"timing": once(START + timedelta(minutes=1))})
