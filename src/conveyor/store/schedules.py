"""The ScheduleStore, once for both databases.

Not a hot path: the portable queries of ``schedules.sql`` run through the store's
``run_sql`` primitive, and rows become :class:`Schedule` records here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor.domain.errors import Conflict, NotFound
from conveyor.domain.events import EventType
from conveyor.domain.lifecycle import JobState
from conveyor.domain.schedules import (
    Firing,
    JobTemplate,
    MisfirePolicy,
    OverlapPolicy,
    RunOutcome,
    Schedule,
    ScheduleRun,
    ScheduleSource,
    ScheduleSpec,
)
from conveyor.domain.timing import LAST_MOMENT, Timing, TimingKind
from conveyor.store.portable import PortableStore, Row
from conveyor.store.protocol import SqlSteps


class SqlScheduleStore(PortableStore):
    """The :class:`~conveyor.store.schedules_protocol.ScheduleStore` on a store's database."""

    sql_file = "schedules.sql"

    async def add(
        self,
        tenant_id: str,
        spec: ScheduleSpec,
        source: ScheduleSource,
        owner: str,
        next_fire_at: datetime | None,
        now: datetime,
    ) -> Schedule:
        """Store a new schedule."""
        params = _spec_params(spec) | {
            "tenant_id": tenant_id,
            "source": source.value,
            "owner": owner,
            "next_fire_at": next_fire_at,
            "now": now,
        }
        try:
            [row] = await self._rows("insert_schedule", write=True, **params)
        except Conflict:
            raise Conflict(f"a schedule named {spec.name!r} already exists") from None
        except NotFound:
            raise NotFound(f"tenant {tenant_id!r} does not exist") from None
        return self._schedule(row)

    async def get(self, tenant_id: str, schedule_id: int) -> Schedule:
        """One schedule, or ``NotFound``."""
        found = await self._rows("get_schedule", tenant_id=tenant_id, id=schedule_id)
        if not found:
            raise NotFound(f"schedule {schedule_id} does not exist")
        return self._schedule(found[0])

    async def find(self, tenant_id: str, name: str) -> Schedule | None:
        """The schedule called ``name``, if any."""
        found = await self._rows("get_schedule_by_name", tenant_id=tenant_id, name=name)
        return self._schedule(found[0]) if found else None

    async def list_schedules(self, tenant_id: str) -> list[Schedule]:
        """The tenant's schedules, by name."""
        return [
            self._schedule(row) for row in await self._rows("list_schedules", tenant_id=tenant_id)
        ]

    async def update(
        self,
        schedule: Schedule,
        spec: ScheduleSpec,
        source: ScheduleSource,
        next_fire_at: datetime | None,
        now: datetime,
    ) -> Schedule:
        """Replace the definition if the stored revision is still the one read."""
        params = _spec_params(spec) | {
            "tenant_id": schedule.tenant_id,
            "id": schedule.id,
            "revision": schedule.revision,
            "source": source.value,
            "next_fire_at": next_fire_at,
            "now": now,
        }
        try:
            found = await self._rows("update_schedule", write=True, **params)
        except Conflict:
            raise Conflict(f"a schedule named {spec.name!r} already exists") from None
        if found:
            return self._schedule(found[0])
        await self.get(schedule.tenant_id, schedule.id)  # NotFound if it was deleted
        raise Conflict(f"schedule {schedule.id} was changed by someone else; read it again")

    async def delete(self, tenant_id: str, schedule_id: int) -> None:
        """Delete a schedule (its runs go with it)."""
        if not await self._rows("delete_schedule", write=True, tenant_id=tenant_id, id=schedule_id):
            raise NotFound(f"schedule {schedule_id} does not exist")

    async def due(self, now: datetime, limit: int) -> list[tuple[Schedule, bool]]:
        """Enabled schedules due at ``now`` or holding waiting runs, with whether their
        last job is unfinished."""
        found = await self._rows("due_schedules", now=now, limit=limit)
        return [(self._schedule(row), bool(row["previous_running"])) for row in found]

    async def next_fire_at(self) -> datetime | None:
        """The earliest fire time of any enabled schedule."""
        [row] = await self._rows("next_fire_at")
        value = row["next_fire_at"]
        return None if value is None else self.store.read_time(value)

    async def record_firing(
        self,
        schedule: Schedule,
        runs: Sequence[tuple[Firing, int | None]],
        next_fire_at: datetime | None,
        pending: Sequence[datetime],
        now: datetime,
    ) -> bool:
        """Record runs and events, and move the schedule on, in one transaction."""
        steps: list[tuple[str, dict[str, Any]]] = []
        for firing, job_id in runs:
            steps += self._run_steps(schedule, firing, job_id, now)
        started = [job_id for firing, job_id in runs if job_id is not None]
        fired = [f.fire_at for f, job_id in runs if job_id is not None]
        advance = {
            "id": schedule.id,
            "revision": schedule.revision,
            "old_next_fire_at": schedule.next_fire_at,
            "old_pending": _times_json(schedule.pending),
            "next_fire_at": next_fire_at,
            "pending": _times_json(pending),
            "last_fire_at": max(fired) if fired else None,
            "last_job_id": started[-1] if started else None,
        }
        steps.append((self._sql["advance_schedule"], advance))
        results = await self.store.run_sql(_as_steps(steps), write=True)
        return bool(results[-1])

    def _run_steps(
        self, schedule: Schedule, firing: Firing, job_id: int | None, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        run = {
            "tenant_id": schedule.tenant_id,
            "schedule_id": schedule.id,
            "fire_at": firing.fire_at,
            "outcome": firing.outcome.value,
            "reason": firing.reason,
            "job_id": job_id,
            "now": now,
        }
        kind = EventType.SCHEDULE_FIRED if job_id is not None else EventType.SCHEDULE_SKIPPED
        data = {
            "schedule_id": schedule.id,
            "schedule": schedule.name,
            "fire_at": firing.fire_at.isoformat(),
            "outcome": firing.outcome.value,
        }
        if firing.reason:
            data["reason"] = firing.reason
        event = run | {"type": kind.value, "data": json.dumps(data, separators=(",", ":"))}
        return [(self._sql["insert_run_event"], event), (self._sql["insert_run"], run)]

    async def list_runs(
        self, tenant_id: str, schedule_id: int, limit: int, before: datetime | None = None
    ) -> list[ScheduleRun]:
        """A schedule's runs, newest first."""
        found = await self._rows(
            "list_runs",
            tenant_id=tenant_id,
            schedule_id=schedule_id,
            before=before or LAST_MOMENT,
            limit=limit,
        )
        return [self._run(row) for row in found]

    async def runs_between(
        self, tenant_id: str, start: datetime, end: datetime, limit: int
    ) -> list[ScheduleRun]:
        """The tenant's runs fired in ``[start, end)``, oldest first."""
        found = await self._rows(
            "runs_between", tenant_id=tenant_id, start=start, end=end, limit=limit
        )
        return [self._run(row) for row in found]

    def _time(self, value: Any) -> datetime | None:
        return None if value is None else self.store.read_time(value)

    def _schedule(self, row: Row) -> Schedule:
        read = self.store.read_time
        timing = Timing(
            TimingKind(row["kind"]),
            row["timezone"],
            cron=row["cron"],
            interval=float(row["interval_seconds"]),
            anchor=read(row["anchor"]),
        )
        template = JobTemplate(
            task=row["task"],
            payload=json.loads(row["payload"]),
            queue=row["queue"],
            priority=None if row["priority"] is None else int(row["priority"]),
            assignee=row["assignee"],
        )
        spec = ScheduleSpec(
            name=row["name"],
            timing=timing,
            job=template,
            enabled=bool(row["enabled"]),
            start_at=self._time(row["start_at"]),
            end_at=self._time(row["end_at"]),
            jitter=float(row["jitter"]),
            description=row["description"],
            misfire=MisfirePolicy(row["misfire"]),
            overlap=OverlapPolicy(row["overlap"]),
            catchup_limit=int(row["catchup_limit"]),
        )
        return Schedule(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            spec=spec,
            source=ScheduleSource(row["source"]),
            owner=row["owner"],
            revision=int(row["revision"]),
            next_fire_at=self._time(row["next_fire_at"]),
            last_fire_at=self._time(row["last_fire_at"]),
            last_job_id=None if row["last_job_id"] is None else int(row["last_job_id"]),
            pending=tuple(datetime.fromisoformat(t) for t in json.loads(row["pending"])),
            created_at=read(row["created_at"]),
            updated_at=read(row["updated_at"]),
        )

    def _run(self, row: Row) -> ScheduleRun:
        return ScheduleRun(
            schedule_id=int(row["schedule_id"]),
            fire_at=self.store.read_time(row["fire_at"]),
            outcome=RunOutcome(row["outcome"]),
            reason=row["reason"],
            job_id=None if row["job_id"] is None else int(row["job_id"]),
            job_state=None if row["job_state"] is None else JobState(row["job_state"]),
            created_at=self.store.read_time(row["created_at"]),
        )


def _spec_params(spec: ScheduleSpec) -> dict[str, Any]:
    timing, job = spec.timing, spec.job
    return {
        "name": spec.name,
        "kind": timing.kind.value,
        "cron": timing.cron,
        "timezone": timing.timezone,
        "interval_seconds": timing.interval,
        "anchor": timing.anchor,
        "task": job.task,
        "payload": json.dumps(job.payload, separators=(",", ":")),
        "queue": job.queue,
        "priority": job.priority,
        "assignee": job.assignee,
        "enabled": spec.enabled,
        "start_at": spec.start_at,
        "end_at": spec.end_at,
        "jitter": spec.jitter,
        "description": spec.description,
        "misfire": spec.misfire.value,
        "overlap": spec.overlap.value,
        "catchup_limit": spec.catchup_limit,
    }


def _times_json(times: Sequence[datetime]) -> str:
    return json.dumps([t.isoformat() for t in times])


def _as_steps(steps: list[tuple[str, dict[str, Any]]]) -> SqlSteps:
    return steps
