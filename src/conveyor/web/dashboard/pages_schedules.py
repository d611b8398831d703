"""``/schedules``: the list, the month and week calendar, the create and edit form with
its live preview, pause and resume, and delete with a confirmation page.

The pages are a thin layer over :class:`~conveyor.services.schedules.ScheduleService`:
a form becomes the API's request model (``ScheduleIn``, ``ScheduleChange``), so it is
checked by the same code and fails with the same messages, and the preview shows
what the API's preview shows. Times are shown in the viewer's zone: ``?tz=``, else
the ``conveyor_tz`` cookie that ``schedules.js`` sets from the browser, else UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from conveyor.domain.calendar_plan import Occurrence, Plan
from conveyor.domain.errors import (
    Conflict,
    ConveyorError,
    InvalidInput,
    PermissionDenied,
)
from conveyor.domain.schedules import (
    MisfirePolicy,
    OverlapPolicy,
    Schedule,
)
from conveyor.domain.timing import TimingKind, known_zones
from conveyor.services.schedules import ScheduleService
from conveyor.web.dashboard.access import CheckedForm, Staff, Writer
from conveyor.web.dashboard.calendar import (
    SHOWN_PER_DAY,
    SHOWN_PER_HOUR,
    CalendarRange,
    CalendarRun,
    CellKey,
    Cells,
    run_look,
)
from conveyor.web.dashboard.forms import FORM, checked_id, done_message, validated
from conveyor.web.dashboard.render import page
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import Viewer
from conveyor.web.dashboard.zone import viewer_zone
from conveyor.web.routes.schedules import NEXT_RUNS
from conveyor.web.schemas_schedules import (
    PreviewIn,
    PreviewOut,
    ScheduleChange,
    ScheduleIn,
)

router = dashboard_router()

RECENT_RUNS = 20
PAST_LIMIT = 2000
"""At most this many recorded runs on one calendar page (the oldest first)."""
PLANNED_LIMIT = 2000
"""At most this many planned runs on one calendar page (cells keep a few each)."""
TEXT_FIELDS = ("name", "task", "cron", "timezone", "queue", "assignee", "description")
FORM_FIELDS = (*TEXT_FIELDS, "payload", "priority", "misfire", "overlap")
DONE_MESSAGES = {
    "created": "The schedule was created.",
    "saved": "The schedule was saved.",
    "paused": "The schedule is paused: no run starts until it is resumed.",
    "resumed": "The schedule runs again from now on.",
    "deleted": "The schedule and its run history were deleted; its jobs stay.",
}
CLEARABLE = ("queue", "priority", "assignee")
ZONE_NAMES = sorted(known_zones())
"""Offered as the time zone fields' suggestions."""


def schedules_of(request: Request, viewer: Viewer) -> ScheduleService:
    """The schedule use cases as the viewer may use them."""
    service: ScheduleService = request.app.state.server.schedules_for(viewer.principal)
    return service


# -- the list ---------------------------------------------------------------------------


@router.get("/schedules")
async def schedule_list(request: Request, viewer: Staff) -> Response:
    """Every schedule of the tenant with its timing, state and next run."""
    zone, _ = viewer_zone(request)
    found = await schedules_of(request, viewer).list_schedules()
    return page(
        request,
        "schedules.html",
        viewer,
        section="schedules",
        schedules=found,
        zone=ZoneInfo(zone),
        zone_name=zone,
        done=done_message(request, DONE_MESSAGES),
    )


# -- the calendar ----------------------------------------------------------------------


def _calendar_query(request: Request, today: date) -> tuple[str, date]:
    """The view (``month`` or ``week``) and the day to show, from the query string."""
    view = request.query_params.get("view", "month")
    if view not in ("month", "week"):
        raise InvalidInput("view", "must be month or week")
    raw = request.query_params.get("date", "").strip()
    if not raw:
        return view, today
    try:
        anchor = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("date", "must be a date like 2030-06-01") from None
    if not 1971 <= anchor.year <= 2998:
        raise InvalidInput("date", "must be from 1971 to 2998")
    return view, anchor


async def _past_runs(
    schedules: ScheduleService, start: datetime, end: datetime
) -> tuple[list[Occurrence], datetime | None]:
    """The recorded runs in ``[start, end)`` up to now, oldest first, with their
    outcome; and, when there were too many, the instant they stop at."""
    end = min(end, schedules.clock())
    if end <= start:
        return [], None
    calendar = await schedules.calendar(start, end, limit=PAST_LIMIT)
    runs = calendar.occurrences
    return runs, (runs[-1].at if calendar.truncated and runs else None)


async def _planned_runs(
    schedules: ScheduleService, start: datetime, end: datetime, cells: Cells
) -> Plan:
    """The runs planned in ``[start, end)`` from now on, as many as the cells show."""
    start = max(start, schedules.clock())
    if end <= start:
        return Plan([])
    return await schedules.plan(start, end, PLANNED_LIMIT, cells)


def _by_cell(runs: list[CalendarRun], cells: Cells) -> dict[CellKey, list[CalendarRun]]:
    """The runs grouped by the calendar cell they fall in."""
    found: dict[CellKey, list[CalendarRun]] = {}
    for run in runs:
        found.setdefault(cells.key(run.occurrence.at), []).append(run)
    return found


@router.get("/schedules/calendar")
async def schedule_calendar(request: Request, viewer: Staff) -> Response:
    """Planned and past runs of every schedule, by month or by week, in the viewer's zone."""
    zone_name, explicit = viewer_zone(request)
    zone = ZoneInfo(zone_name)
    schedules = schedules_of(request, viewer)
    now = schedules.clock()
    view, anchor = _calendar_query(request, now.astimezone(zone).date())
    shown = CalendarRange.of(view, anchor)
    start, end = shown.bounds(zone)
    past, past_until = await _past_runs(schedules, start, end)
    cells = Cells.of(view, zone)
    planned = await _planned_runs(schedules, start, end, cells)
    runs = [CalendarRun(o, o.at.astimezone(zone), run_look(o)) for o in past + planned.runs]
    keep = {"tz": zone_name} if explicit else {}

    def link(**changes: str) -> str:
        return "/schedules/calendar?" + urlencode({"view": view, **keep, **changes})

    return page(
        request,
        "schedules_calendar.html",
        viewer,
        section="schedules",
        shown=shown,
        today=now.astimezone(zone).date(),
        zone_name=zone_name,
        zone_explicit=explicit,
        cells=_by_cell(runs, cells),
        full=planned.full,
        past_until=past_until.astimezone(zone) if past_until else None,
        planned_until=planned.until.astimezone(zone) if planned.until else None,
        link=link,
        shown_per_cell=SHOWN_PER_HOUR if cells.hourly else SHOWN_PER_DAY,
        zone_names=ZONE_NAMES,
    )


# -- the preview -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    """A timing in words and its next runs, or the problem with it."""

    result: PreviewOut | None = None
    field: str = ""
    problem: str = ""


def preview_of(schedules: ScheduleService, cron: str, zone: str) -> Preview | None:
    """What a cron expression in ``zone`` does, by the API preview's own code; ``None``
    when there is nothing to preview yet."""
    if not cron.strip():
        return None
    try:
        spec = PreviewIn(cron=cron, timezone=zone.strip() or None).spec()
    except InvalidInput as exc:
        return Preview(field=exc.field, problem=exc.problem)
    return Preview(PreviewOut.of(spec, schedules.clock(), NEXT_RUNS))


@router.get("/fragments/schedules/preview")
async def schedule_preview(request: Request, viewer: Writer) -> Response:
    """The preview beside the form's cron field, fetched as the viewer types."""
    params = request.query_params
    cron, zone = params.get("cron", "")[:255], params.get("timezone", "")[:64]
    preview = preview_of(schedules_of(request, viewer), cron, zone)
    return page(request, "_schedule_preview.html", viewer, preview=preview)


# -- the form --------------------------------------------------------------------------


def _form_values(form: FormData) -> dict[str, str]:
    """What the viewer typed, by field (kept to show the form again)."""
    values = {name: str(form.get(name) or "").strip() for name in FORM_FIELDS}
    return values | {"enabled": "on" if form.get("enabled") == "on" else ""}


def _model_fields(values: dict[str, str], clear: bool) -> dict[str, Any]:
    """The request model's fields from the form: a blank optional field is left out
    (a new schedule), or (``clear``, a changed one) cleared."""
    fields: dict[str, Any] = {}
    for name in (*TEXT_FIELDS, "priority", "misfire", "overlap"):
        value = values.get(name, "")
        if value:
            fields[name] = value
        elif clear and name in CLEARABLE:
            fields[name] = None
    fields["description"] = values.get("description", "")
    payload = values.get("payload", "")
    if payload:
        try:
            fields["payload"] = json.loads(payload)
        except ValueError:
            raise InvalidInput("payload", "is not valid JSON") from None
        except RecursionError:
            raise InvalidInput("payload", "is nested too deeply") from None
    elif clear:
        fields["payload"] = None  # an emptied payload is {}
    return fields


def _form_page(
    request: Request,
    viewer: Viewer,
    values: dict[str, str],
    schedule: Schedule | None = None,
    error: ConveyorError | None = None,
    default_zone: str = "",
) -> Response:
    """The create or edit form with the viewer's values and the problem, if any;
    ``default_zone``: the zone a new form starts in (the page's script may change it
    to the browser's until the viewer types one)."""
    errors: dict[str, str] = {}
    status = 200
    if isinstance(error, InvalidInput):
        if error.field in FORM_FIELDS:
            errors[error.field] = error.problem
        else:  # a field the form does not show (such as ``revision``): above the form
            errors[FORM] = error.message
        status = 400
    elif error is not None:
        errors[FORM] = error.message
        status = 409 if isinstance(error, Conflict) else 403
    schedules = schedules_of(request, viewer)
    return page(
        request,
        "schedules_form.html",
        viewer,
        status,
        section="schedules",
        schedule=schedule,
        values=values,
        errors=errors,
        preview=preview_of(schedules, values.get("cron", ""), values.get("timezone", "")),
        zone_names=ZONE_NAMES,
        default_zone=default_zone,
        misfire_choices=[m.value for m in MisfirePolicy],
        overlap_choices=[o.value for o in OverlapPolicy],
    )


def values_of(schedule: Schedule) -> dict[str, str]:
    """A stored schedule's fields as the form shows them."""
    spec, job = schedule.spec, schedule.spec.job
    payload = "" if job.payload == {} else json.dumps(job.payload, indent=2, ensure_ascii=False)
    return {
        "name": spec.name,
        "task": job.task,
        "cron": spec.timing.cron if spec.timing.kind is TimingKind.CRON else "",
        "timezone": spec.timing.timezone,
        "queue": job.queue or "",
        "assignee": job.assignee or "",
        "description": spec.description,
        "payload": payload,
        "priority": "" if job.priority is None else str(job.priority),
        "misfire": spec.misfire.value,
        "overlap": spec.overlap.value,
    }


@router.get("/schedules/new")
async def new_schedule(request: Request, viewer: Writer) -> Response:
    """An empty form, in the viewer's zone, with a daily cron to start from."""
    zone, _ = viewer_zone(request)
    values = dict.fromkeys(FORM_FIELDS, "") | {"cron": "0 9 * * *", "timezone": zone}
    values |= {"misfire": MisfirePolicy.RUN_ONCE.value, "overlap": OverlapPolicy.ALLOW.value}
    values["enabled"] = "on"
    return _form_page(request, viewer, values, default_zone=zone)


@router.post("/schedules/new")
async def create_schedule(request: Request, viewer: Writer, form: CheckedForm) -> Response:
    """Create the schedule the form describes, or show the form again with the problem."""
    values = _form_values(form)
    schedules = schedules_of(request, viewer)
    try:
        fields = _model_fields(values, clear=False) | {"enabled": values["enabled"] == "on"}
        created = await schedules.create(validated(ScheduleIn, fields).spec())
    except (InvalidInput, Conflict, PermissionDenied) as exc:
        return _form_page(request, viewer, values, error=exc)
    return RedirectResponse(f"/schedules/{created.id}?done=created", status_code=303)


# -- one schedule (after /schedules/calendar and /schedules/new: routes match in order) --


@router.get("/schedules/{schedule_id}")
async def schedule_page(request: Request, viewer: Staff, schedule_id: int) -> Response:
    """A schedule's definition, its next runs and its recent runs with their outcome."""
    schedules = schedules_of(request, viewer)
    schedule = await schedules.get(checked_id("schedule", schedule_id))
    zone, _ = viewer_zone(request)
    return page(
        request,
        "schedules_detail.html",
        viewer,
        section="schedules",
        schedule=schedule,
        upcoming=schedules.upcoming(schedule, NEXT_RUNS),
        runs=await schedules.runs(schedule.id, RECENT_RUNS),
        zone=ZoneInfo(zone),
        zone_name=zone,
        done=done_message(request, DONE_MESSAGES),
        run_look=run_look,
    )


@router.get("/schedules/{schedule_id}/edit")
async def edit_schedule(request: Request, viewer: Writer, schedule_id: int) -> Response:
    """The form filled in with the schedule as it is now."""
    schedule = await schedules_of(request, viewer).get(checked_id("schedule", schedule_id))
    return _form_page(request, viewer, values_of(schedule), schedule)


@router.post("/schedules/{schedule_id}/edit")
async def save_schedule(
    request: Request, viewer: Writer, form: CheckedForm, schedule_id: int
) -> Response:
    """Apply the form to the schedule (refused if it changed since the form was shown)."""
    schedules = schedules_of(request, viewer)
    current = await schedules.get(checked_id("schedule", schedule_id))
    values = _form_values(form)
    try:
        fields = _model_fields(values, clear=True)
        if not values["cron"] and current.spec.timing.kind is TimingKind.CRON:
            raise InvalidInput("cron", "must be a cron expression like '0 19 * * *'")
        change = validated(ScheduleChange, fields | {"revision": form.get("revision")})
        revision = current.revision if change.revision is None else change.revision
        await schedules.update(current.id, change.changes(current.spec), revision)
    except (InvalidInput, Conflict, PermissionDenied) as exc:
        return _form_page(request, viewer, values, current, exc)
    return RedirectResponse(f"/schedules/{current.id}?done=saved", status_code=303)


# -- pause, resume, delete -------------------------------------------------------------


async def _set_enabled(
    request: Request, viewer: Viewer, schedule_id: int, enabled: bool, form: FormData
) -> Response:
    """Pause or resume a schedule, then back to the page the button was on."""
    schedules = schedules_of(request, viewer)
    changed = await schedules.set_enabled(checked_id("schedule", schedule_id), enabled)
    done = "resumed" if enabled else "paused"
    back = "/schedules" if form.get("back") == "list" else f"/schedules/{changed.id}"
    return RedirectResponse(f"{back}?done={done}", status_code=303)


@router.post("/schedules/{schedule_id}/enable")
async def enable_schedule(
    request: Request, viewer: Writer, form: CheckedForm, schedule_id: int
) -> Response:
    """Resume a schedule: it runs again from now on."""
    return await _set_enabled(request, viewer, schedule_id, True, form)


@router.post("/schedules/{schedule_id}/disable")
async def disable_schedule(
    request: Request, viewer: Writer, form: CheckedForm, schedule_id: int
) -> Response:
    """Pause a schedule: no run starts until it is resumed."""
    return await _set_enabled(request, viewer, schedule_id, False, form)


@router.get("/schedules/{schedule_id}/delete")
async def confirm_delete(request: Request, viewer: Writer, schedule_id: int) -> Response:
    """What deleting the schedule removes, with the button that does it."""
    schedules = schedules_of(request, viewer)
    schedule = await schedules.get(checked_id("schedule", schedule_id))
    runs = await schedules.runs(schedule.id, RECENT_RUNS + 1)
    return page(
        request,
        "schedules_delete.html",
        viewer,
        section="schedules",
        schedule=schedule,
        run_count=len(runs),
        more_runs=len(runs) > RECENT_RUNS,
    )


@router.post("/schedules/{schedule_id}/delete")
async def delete_schedule(
    request: Request, viewer: Writer, form: CheckedForm, schedule_id: int
) -> Response:
    """Delete the schedule and its run history (the jobs it made stay)."""
    await schedules_of(request, viewer).delete(checked_id("schedule", schedule_id))
    return RedirectResponse("/schedules?done=deleted", status_code=303)
