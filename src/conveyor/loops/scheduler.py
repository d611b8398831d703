"""The Scheduler: turns due schedules into jobs, on the node that leads.

Each round it asks the store for due schedules, lets
:func:`conveyor.domain.schedules.plan_firing` decide (misfire and overlap policies),
creates the jobs (each with the firing's idempotency key, so a repeat finds the
first job), then records the runs and moves the schedule on in one transaction.
Between rounds it sleeps until the earliest fire time, at most ``interval`` seconds
(a schedule added on another node is seen within that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from conveyor.domain.errors import ConveyorError
from conveyor.domain.schedules import (
    DEFAULT_MISFIRE_GRACE,
    Firing,
    RunOutcome,
    Schedule,
    jitter_delay,
    message_id,
    plan_firing,
)
from conveyor.loops.base import Loop
from conveyor.services.jobs import JobService, owner_email
from conveyor.store.leadership import Leadership
from conveyor.store.schedules_protocol import ScheduleStore

log = logging.getLogger("conveyor.scheduler")


class JobsFor(Protocol):
    """The job service of a tenant, creating jobs as ``created_by`` (the scheduler acts
    for every tenant, each schedule's jobs as made by its owner)."""

    def __call__(self, tenant_id: str, created_by: str | None = None) -> JobService:
        """The service."""


BATCH = 100


class Scheduler(Loop):
    """Fires due schedules while this node leads."""

    name = "scheduler"

    def __init__(
        self,
        schedules: ScheduleStore,
        jobs_for: JobsFor,
        leadership: Leadership,
        clock: Callable[[], datetime],
        interval: float = 1.0,
        grace: timedelta = DEFAULT_MISFIRE_GRACE,
    ) -> None:
        super().__init__(interval)
        self.schedules = schedules
        self.jobs_for = jobs_for
        self.leadership = leadership
        self.clock = clock
        self.grace = grace
        self.leading = False
        self._more = False

    async def run_once(self) -> int:
        """Fire every due schedule (if this node leads); return how many jobs it made."""
        self.leading = await self.leadership.hold()
        if not self.leading:
            return 0
        now = self.clock()
        due = await self.schedules.due(now, BATCH)
        self._more = len(due) == BATCH
        made = 0
        for schedule, previous_running in due:
            made += await self.fire(schedule, previous_running, now)
        return made

    async def fire(self, schedule: Schedule, previous_running: bool, now: datetime) -> int:
        """Carry out one schedule's plan; return how many jobs it made."""
        plan = plan_firing(schedule, now, previous_running, self.grace)
        if not plan.firings and plan.next_fire_at == schedule.next_fire_at:
            return 0  # runs waiting behind one still running: nothing to do yet
        runs: list[tuple[Firing, int | None]] = []
        for firing in plan.firings:
            if firing.outcome is RunOutcome.ENQUEUED:
                runs.append(await self._enqueue(schedule, firing))
            else:
                runs.append((firing, None))
        moved = await self.schedules.record_firing(
            schedule, runs, plan.next_fire_at, plan.pending, now
        )
        if not moved:
            log.info("schedule %d moved on elsewhere; its jobs were the same", schedule.id)
        return sum(1 for _, job_id in runs if job_id is not None)

    async def _enqueue(self, schedule: Schedule, firing: Firing) -> tuple[Firing, int | None]:
        template = schedule.spec.job
        options = template.options() | {
            "message_id": message_id(schedule.id, firing.fire_at),
            "run_at": firing.fire_at + timedelta(seconds=jitter_delay(schedule.spec)),
            "tags": ["schedule"],
            "key": schedule.name,
        }
        jobs = self.jobs_for(schedule.tenant_id, owner_email(schedule.owner))
        try:
            job = await jobs.enqueue(template.task, template.payload, options)
        except ConveyorError as exc:
            log.warning("schedule %d could not create its job: %s", schedule.id, exc.message)
            return Firing(firing.fire_at, RunOutcome.FAILED, exc.message), None
        return firing, job.id

    async def seconds_to_wait(self) -> float:
        """Until the earliest fire time, at most ``interval``; a follower waits the
        whole interval before asking for the lead again."""
        if not self.leading:
            return self.interval
        if self._more:
            return 0.0
        upcoming = await self.schedules.next_fire_at()
        if upcoming is None:
            return self.interval
        return min(self.interval, max((upcoming - self.clock()).total_seconds(), 0.0))

    async def stop(self) -> None:
        """Stop firing and give the lead up, so another node takes over at once."""
        await super().stop()
        await self.leadership.release()
