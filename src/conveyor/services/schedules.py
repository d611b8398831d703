"""Schedule use cases: create, read, change, pause and delete a tenant's schedules,
read their history, plan a calendar, and sync the schedules declared in code.

Reading needs ``jobs:read``, changing ``jobs:write`` (agents, who see only their
assigned jobs, see no schedules); a schedule that runs the ``shell`` task needs
``admin`` (a tenant's owners, or an admin key). Every use case acts on the
principal's own tenant only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio

from conveyor.builtins.catalog import check_shell_job, may_run_shell, shell_tasks_from_env
from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.calendar_plan import Buckets, Occurrence, Plan, plan_runs
from conveyor.domain.errors import Conflict, InvalidInput, PermissionDenied
from conveyor.domain.schedules import (
    Schedule,
    ScheduleRun,
    ScheduleSource,
    ScheduleSpec,
    change_spec,
)
from conveyor.domain.timing import TimingKind
from conveyor.store.schedules_protocol import ScheduleStore

log = logging.getLogger("conveyor.schedules")

Clock = Callable[[], datetime]
MAX_OCCURRENCES = 5000
MAX_RANGE = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class Calendar:
    """The occurrences between two instants, oldest first; ``truncated`` when there
    were more than the limit."""

    occurrences: list[Occurrence]
    truncated: bool


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What syncing the code's schedules did, by schedule name."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]
    refused: list[str]
    """Names taken by a schedule made through the API: left alone."""


class ScheduleService:
    """One tenant's schedules, as its principal may read and change them."""

    def __init__(
        self,
        store: ScheduleStore,
        principal: Principal,
        clock: Clock,
        on_change: Callable[[], None] | None = None,
        shell_tasks: bool | None = None,
    ) -> None:
        self.store = store
        self.principal = principal
        self.clock = clock
        self.on_change = on_change
        """Called after every change (the local scheduler re-reads at once)."""
        self.shell_tasks = shell_tasks_from_env() if shell_tasks is None else shell_tasks
        """Whether the operator enabled the ``shell`` task (default: the environment)."""

    @property
    def tenant_id(self) -> str:
        """The tenant whose schedules these are: the principal's."""
        return self.principal.tenant_id

    def _may(self, scope: Scope) -> None:
        self.principal.require(scope)
        if self.principal.assigned_only:
            raise PermissionDenied("agents see only the jobs assigned to them")

    def _may_run(self, spec: ScheduleSpec) -> None:
        """The jobs a schedule makes run as the server: refuse what the caller could
        not enqueue itself (a shell job by a member, or any while shell is off)."""
        check_shell_job(
            spec.job.task, enabled=self.shell_tasks, allowed=may_run_shell(self.principal)
        )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def create(self, spec: ScheduleSpec) -> Schedule:
        """Store a new schedule; its first fire time is computed from now."""
        self._may(Scope.JOBS_WRITE)
        self._may_run(spec)
        next_fire_at = self._first_fire(spec)
        schedule = await self.store.add(
            self.tenant_id,
            spec,
            ScheduleSource.API,
            self.principal.actor,
            next_fire_at,
            self.clock(),
        )
        self._changed()
        return schedule

    def _first_fire(self, spec: ScheduleSpec, new_timing: bool = True) -> datetime | None:
        """The first fire time from now; a one-off given a time already past is refused
        (one that simply fired already, being paused or renamed, is not)."""
        first = spec.first_fire_after(self.clock())
        if first is None and new_timing and spec.timing.kind is TimingKind.ONCE:
            raise InvalidInput("at", "is in the past")
        return first

    async def _store(
        self, current: Schedule, spec: ScheduleSpec, source: ScheduleSource
    ) -> Schedule:
        """Replace ``current``'s definition with ``spec`` and wake the scheduler."""
        first = self._first_fire(spec, new_timing=spec.timing != current.spec.timing)
        updated = await self.store.update(current, spec, source, first, self.clock())
        self._changed()
        return updated

    async def get(self, schedule_id: int) -> Schedule:
        """One schedule."""
        self._may(Scope.JOBS_READ)
        return await self.store.get(self.tenant_id, schedule_id)

    async def find(self, name: str) -> Schedule | None:
        """The schedule called ``name``, if any."""
        self._may(Scope.JOBS_READ)
        return await self.store.find(self.tenant_id, name)

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule of the tenant, by name."""
        self._may(Scope.JOBS_READ)
        return await self.store.list_schedules(self.tenant_id)

    async def update(
        self, schedule_id: int, changes: Mapping[str, Any], revision: int | None = None
    ) -> Schedule:
        """Apply ``changes`` (field names as in ``schedule_spec``) and recompute the next
        fire time. ``revision``: refuse (``Conflict``) unless the schedule is still at
        it. A schedule declared in code is changed in code, so this refuses it."""
        self._may(Scope.JOBS_WRITE)
        current = await self.store.get(self.tenant_id, schedule_id)
        if current.source is ScheduleSource.CODE:
            raise Conflict(
                f"schedule {current.name!r} is declared in code with @app.periodic; "
                "change it there (pause and resume work here)"
            )
        return await self._replace(current, change_spec(current.spec, changes), revision)

    async def _replace(
        self, current: Schedule, spec: ScheduleSpec, revision: int | None
    ) -> Schedule:
        if revision is not None and revision != current.revision:
            raise Conflict(
                f"schedule {current.id} is at revision {current.revision}, not {revision}; "
                "read it again"
            )
        self._may_run(spec)
        if spec == current.spec:
            return current
        return await self._store(current, spec, current.source)

    async def set_enabled(self, schedule_id: int, enabled: bool) -> Schedule:
        """Pause (``False``) or resume a schedule. Resuming starts from now: fire times
        that passed while it was paused are not made up."""
        self._may(Scope.JOBS_WRITE)
        current = await self.store.get(self.tenant_id, schedule_id)
        if current.spec.enabled == enabled:
            return current
        if enabled:  # resuming starts jobs again: the caller must be allowed to make them
            self._may_run(current.spec)
        return await self._store(
            current, change_spec(current.spec, {"enabled": enabled}), current.source
        )

    async def delete(self, schedule_id: int) -> None:
        """Delete a schedule and its run history (its jobs stay)."""
        self._may(Scope.JOBS_WRITE)
        await self.store.delete(self.tenant_id, schedule_id)
        self._changed()

    async def runs(
        self, schedule_id: int, limit: int = 100, before: datetime | None = None
    ) -> list[ScheduleRun]:
        """A schedule's runs, newest first."""
        self._may(Scope.JOBS_READ)
        await self.store.get(self.tenant_id, schedule_id)
        return await self.store.list_runs(self.tenant_id, schedule_id, limit, before)

    def upcoming(self, schedule: Schedule, count: int) -> list[datetime]:
        """The next ``count`` fire times of a schedule (none while it is paused)."""
        if not schedule.spec.enabled or schedule.next_fire_at is None:
            return []
        later = schedule.spec.upcoming(schedule.next_fire_at, count - 1) if count > 1 else []
        return [schedule.next_fire_at, *later][:count]

    async def calendar(
        self, start: datetime, end: datetime, limit: int = MAX_OCCURRENCES
    ) -> Calendar:
        """Every run of the tenant's schedules in ``[start, end)``: past runs with their
        outcome, then planned ones from now on."""
        self._may(Scope.JOBS_READ)
        if end <= start:
            raise InvalidInput("end", "must be after start")
        if end - start > MAX_RANGE:
            raise InvalidInput("end", f"must be at most {MAX_RANGE.days} days after start")
        now = self.clock()
        found = [
            _past(run, schedule) for run, schedule in await self._past_runs(start, end, limit + 1)
        ]
        if end > now:
            found += (await self.plan(max(start, now), end, limit + 1)).runs
        found.sort(key=lambda o: (o.at, o.schedule_id))
        return Calendar(found[:limit], truncated=len(found) > limit)

    async def plan(
        self, start: datetime, end: datetime, limit: int, buckets: Buckets | None = None
    ) -> Plan:
        """The runs the enabled schedules plan in ``[start, end)``, merged in time order
        up to ``limit``; with ``buckets``, at most what each bucket keeps. The cron
        work runs in a thread: a big plan does not hold up the server's other requests."""
        self._may(Scope.JOBS_READ)
        schedules = await self.store.list_schedules(self.tenant_id)
        return await anyio.to_thread.run_sync(plan_runs, schedules, start, end, limit, buckets)

    async def _past_runs(
        self, start: datetime, end: datetime, limit: int
    ) -> list[tuple[ScheduleRun, Schedule | None]]:
        runs = await self.store.runs_between(self.tenant_id, start, end, limit)
        by_id = {s.id: s for s in await self.store.list_schedules(self.tenant_id)}
        return [(run, by_id.get(run.schedule_id)) for run in runs]

    async def sync_code(self, specs: Sequence[ScheduleSpec]) -> SyncReport:
        """Create or update the schedules declared in code (``@app.periodic``), by name.

        An unchanged declaration changes nothing (the next fire time is kept, so a
        restart neither skips nor repeats a firing); a name already used by a schedule
        made through the API is left alone and reported.
        """
        self._may(Scope.JOBS_WRITE)
        report = SyncReport([], [], [], [])
        stored = {s.name: s for s in await self.store.list_schedules(self.tenant_id)}
        for spec in specs:
            current = stored.get(spec.name)
            if current is None:
                now = self.clock()
                first = spec.first_fire_after(now)
                await self.store.add(self.tenant_id, spec, ScheduleSource.CODE, "code", first, now)
                report.created.append(spec.name)
            elif current.source is not ScheduleSource.CODE:
                log.warning("schedule %r exists and was not made in code: left alone", spec.name)
                report.refused.append(spec.name)
            elif _same_definition(current.spec, spec):
                report.unchanged.append(spec.name)
            else:
                # A pause made through the API survives a restart.
                kept = change_spec(spec, {"enabled": current.spec.enabled})
                await self._store(current, kept, ScheduleSource.CODE)
                report.updated.append(spec.name)
        if report.created:
            self._changed()
        return report


def _same_definition(stored: ScheduleSpec, declared: ScheduleSpec) -> bool:
    """Equal apart from ``enabled`` (which pause and resume own)."""
    return change_spec(stored, {"enabled": declared.enabled}) == declared


def _past(run: ScheduleRun, schedule: Schedule | None) -> Occurrence:
    return Occurrence(
        schedule_id=run.schedule_id,
        schedule=schedule.name if schedule else "",
        task=schedule.spec.job.task if schedule else "",
        at=run.fire_at,
        planned=False,
        outcome=run.outcome,
        reason=run.reason,
        job_id=run.job_id,
        job_state=run.job_state,
    )
