"""The ScheduleStore protocol: each tenant's schedules and the history of their firings.

Not a hot path: one portable implementation serves both databases
(:mod:`conveyor.store.schedules`), held to this protocol by the contract suite. Every
method that names a tenant touches only that tenant's rows; the scheduler's own
methods (:meth:`ScheduleStore.due`, :meth:`ScheduleStore.record_firing`) serve all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from conveyor.domain.schedules import Firing, Schedule, ScheduleRun, ScheduleSource, ScheduleSpec


class ScheduleStore(Protocol):
    """Durable storage for schedules and their runs."""

    async def add(
        self,
        tenant_id: str,
        spec: ScheduleSpec,
        source: ScheduleSource,
        owner: str,
        next_fire_at: datetime | None,
        now: datetime,
    ) -> Schedule:
        """Store a new schedule; ``Conflict`` if the tenant has one of that name,
        ``NotFound`` if the tenant does not exist."""

    async def get(self, tenant_id: str, schedule_id: int) -> Schedule:
        """One schedule, or ``NotFound``."""

    async def find(self, tenant_id: str, name: str) -> Schedule | None:
        """The schedule called ``name``, if any."""

    async def list_schedules(self, tenant_id: str) -> list[Schedule]:
        """The tenant's schedules, by name."""

    async def update(
        self,
        schedule: Schedule,
        spec: ScheduleSpec,
        source: ScheduleSource,
        next_fire_at: datetime | None,
        now: datetime,
    ) -> Schedule:
        """Replace the definition of ``schedule`` if nobody changed it since it was read
        (``Conflict`` otherwise, ``NotFound`` if it is gone); waiting runs are dropped."""

    async def delete(self, tenant_id: str, schedule_id: int) -> None:
        """Delete a schedule and its history, or raise ``NotFound``."""

    async def due(self, now: datetime, limit: int) -> list[tuple[Schedule, bool]]:
        """Enabled schedules (of every tenant) due at ``now`` or holding waiting runs,
        each with whether its last job is still unfinished."""

    async def next_fire_at(self) -> datetime | None:
        """The earliest fire time of any enabled schedule."""

    async def record_firing(
        self,
        schedule: Schedule,
        runs: Sequence[tuple[Firing, int | None]],
        next_fire_at: datetime | None,
        pending: Sequence[datetime],
        now: datetime,
    ) -> bool:
        """In one transaction: record each firing with the job it made (a fire time
        already recorded is kept as it was), append a ``schedule.fired`` or
        ``schedule.skipped`` event for each new one, and move the schedule on from the
        position it was read at. ``False`` if someone else moved it first."""

    async def list_runs(
        self, tenant_id: str, schedule_id: int, limit: int, before: datetime | None = None
    ) -> list[ScheduleRun]:
        """A schedule's runs, newest first, fired before ``before``."""

    async def runs_between(
        self, tenant_id: str, start: datetime, end: datetime, limit: int
    ) -> list[ScheduleRun]:
        """Every run of the tenant's schedules fired in ``[start, end)``, oldest first."""
