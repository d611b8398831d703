"""``/api/v1/schedules``: create, preview, read, change, pause, resume and delete the
tenant's schedules; their runs; and a calendar of every run between two instants.

Times a person reads (``next_runs``, the calendar) are shown in a time zone with
its offset; stored instants (``next_fire_at``, ``created_at``) are UTC.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from conveyor.domain.schedules import Schedule
from conveyor.services.schedules import MAX_OCCURRENCES, ScheduleService
from conveyor.web.auth import Schedules, Writer
from conveyor.web.routes.params import MAX_ID, Limit
from conveyor.web.schemas_schedules import (
    AwareInstant,
    CalendarOut,
    OccurrenceOut,
    PreviewIn,
    PreviewOut,
    RunOut,
    RunPage,
    ScheduleChange,
    ScheduleIn,
    ScheduleOut,
    zone_named,
)

router = APIRouter(tags=["schedules"])

NEXT_RUNS = 5
"""How many next runs a schedule is shown with unless ``count`` says otherwise."""

ScheduleId = Annotated[int, Path(ge=1, le=MAX_ID, description="A schedule id")]
Count = Annotated[int, Query(ge=0, le=100, description="How many next runs to show")]


def _out(schedules: ScheduleService, schedule: Schedule, count: int = NEXT_RUNS) -> ScheduleOut:
    return ScheduleOut.of(schedule, schedules.upcoming(schedule, count))


@router.post("/schedules", status_code=201, summary="Create a schedule")
async def create_schedule(body: ScheduleIn, schedules: Schedules) -> ScheduleOut:
    """Store a schedule; its first run is the first fire time from now (and from
    ``start_at``). A ``shell`` task needs an owner or an ``admin`` key; a one-off
    ``at`` in the past is refused."""
    return _out(schedules, await schedules.create(body.spec()))


# The static paths are declared before /schedules/{schedule_id}: routes match in order.
@router.post("/schedules/preview", summary="Preview a schedule's next runs")
async def preview_schedule(
    body: PreviewIn, schedules: Schedules, _: Writer, count: Count = NEXT_RUNS
) -> PreviewOut:
    """Check a schedule as a create would and show its timing in words and its next
    ``count`` runs from now, in its zone and in UTC (paused or not). Stores nothing."""
    return PreviewOut.of(body.spec(), schedules.clock(), count)


@router.get("/schedules/occurrences", summary="Every run between two instants")
async def list_occurrences(
    schedules: Schedules,
    start: AwareInstant,
    end: AwareInstant,
    tz: Annotated[str, Query(max_length=64, description="IANA zone to show times in")] = "UTC",
    limit: Annotated[int, Query(ge=1, le=MAX_OCCURRENCES)] = 1000,
) -> CalendarOut:
    """The tenant's past runs in ``[start, end)`` with their outcome, and the runs its
    enabled schedules plan from now to ``end``; oldest first, shown in ``tz``. At most
    366 days at once."""
    zone = ZoneInfo(zone_named("tz", tz))
    calendar = await schedules.calendar(start, end, limit)
    return CalendarOut(
        timezone=tz,
        start=start.astimezone(zone),
        end=end.astimezone(zone),
        items=[OccurrenceOut.of(o, zone) for o in calendar.occurrences],
        truncated=calendar.truncated,
    )


@router.get("/schedules", summary="List schedules")
async def list_schedules(schedules: Schedules, count: Count = NEXT_RUNS) -> list[ScheduleOut]:
    """Every schedule of the tenant, by name, each with its next ``count`` runs."""
    return [_out(schedules, s, count) for s in await schedules.list_schedules()]


@router.get("/schedules/{schedule_id}", summary="Get a schedule")
async def get_schedule(
    schedule_id: ScheduleId, schedules: Schedules, count: Count = NEXT_RUNS
) -> ScheduleOut:
    """A schedule with its timing in words and its next ``count`` runs (none while
    paused), in its zone and in UTC."""
    return _out(schedules, await schedules.get(schedule_id), count)


@router.patch("/schedules/{schedule_id}", summary="Change a schedule")
async def change_schedule(
    schedule_id: ScheduleId, body: ScheduleChange, schedules: Schedules
) -> ScheduleOut:
    """Change the fields given and recompute the next run. With ``revision``, 409 unless
    the schedule is still at it (without, 409 only if it changed while this request
    ran: a new ``timezone`` rereads the timing it had); a schedule declared in code is
    changed in code (409)."""
    current = await schedules.get(schedule_id)
    changes = body.changes(current.spec)
    revision = current.revision if body.revision is None else body.revision
    return _out(schedules, await schedules.update(schedule_id, changes, revision))


@router.delete("/schedules/{schedule_id}", status_code=204, summary="Delete a schedule")
async def delete_schedule(schedule_id: ScheduleId, schedules: Schedules) -> Response:
    """Delete a schedule and its run history; the jobs it made stay."""
    await schedules.delete(schedule_id)
    return Response(status_code=204)


@router.post("/schedules/{schedule_id}/pause", summary="Pause a schedule")
async def pause_schedule(schedule_id: ScheduleId, schedules: Schedules) -> ScheduleOut:
    """No run starts until it is resumed (also for schedules declared in code)."""
    return _out(schedules, await schedules.set_enabled(schedule_id, False))


@router.post("/schedules/{schedule_id}/resume", summary="Resume a schedule")
async def resume_schedule(schedule_id: ScheduleId, schedules: Schedules) -> ScheduleOut:
    """Run again from now on; runs that fell while it was paused are not made up."""
    return _out(schedules, await schedules.set_enabled(schedule_id, True))


@router.get("/schedules/{schedule_id}/runs", summary="List a schedule's runs")
async def list_runs(
    schedule_id: ScheduleId,
    schedules: Schedules,
    before: AwareInstant | None = None,
    limit: Limit = 100,
) -> RunPage:
    """What became of each fire time, newest first, a page at a time."""
    runs = await schedules.runs(schedule_id, limit, before)
    next_cursor = runs[-1].fire_at if len(runs) == limit else None
    return RunPage(items=[RunOut.of(run) for run in runs], next_cursor=next_cursor)
