"""``conveyor schedules ...``: jobs made on a timetable (cron, intervals, one-offs).

Like ``conveyor jobs``, these commands work on the database directly
(``--database-url``, ``--tenant``) as the local operator: whoever can open the
database holds every scope of the tenant, and is recorded as the owner
``user:cli:<login name>``. ``preview`` needs no database at all.

Times given without a zone (``--at``, ``--start-at``, ``--end-at``) are read in
the schedule's zone (``--tz``, default UTC); a name made only of digits is taken
as a schedule id first.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape

from conveyor.cli.context import console, errors, fail, run_with_schedules
from conveyor.cli.jobs import AsJson, parse_payload
from conveyor.cli.render import (
    schedule_record,
    schedule_runs_table,
    schedule_state,
    schedules_table,
    to_json,
    upcoming_lines,
)
from conveyor.domain.errors import InvalidInput, NotFound
from conveyor.domain.jobs import utcnow
from conveyor.domain.schedules import Schedule, ScheduleRun, ScheduleSpec, schedule_spec
from conveyor.domain.timing import MAX_PREVIEW, Timing, check_timezone, retimed, timing_from
from conveyor.services.schedules import ScheduleService

T = TypeVar("T")

schedules_app = typer.Typer(
    help="Make jobs on a timetable: cron expressions, intervals, one-offs.",
    no_args_is_help=True,
)

MAX_LIST = 1000
WHEN_OPTIONS = ("expression", "interval", "at")
"""The parameters that say when a schedule fires; exactly one per schedule."""
SPEC_OPTIONS = (
    "name",
    "task",
    "queue",
    "priority",
    "assignee",
    "misfire",
    "overlap",
    "jitter",
    "description",
    "catchup_limit",
)
"""Parameters passed to ``schedule_spec`` as they are (same names)."""
NO_DATE = "none"
"""What ``--start-at`` or ``--end-at`` takes to remove the date."""

Ref = Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="The schedule's id or name.")]
Every = Annotated[
    str | None, typer.Option("--every", help="An interval instead of cron: 30s, 15m, 2h, 1d.")
]
At = Annotated[
    str | None, typer.Option("--at", help="Once, at this ISO 8601 date-time, instead of cron.")
]
Zone = Annotated[
    str | None,
    typer.Option("--tz", help="IANA zone, like Europe/Berlin, the times are read in."),
]
Name = Annotated[
    str | None, typer.Option(help="Unique in the tenant.", show_default="TASK-<random>")
]
Payload = Annotated[str | None, typer.Option(help="The jobs' payload, as JSON.")]
Queue = Annotated[str | None, typer.Option(help="The jobs' queue (if not given, the task's).")]
Priority = Annotated[int | None, typer.Option(help="0 (highest) to 9 (if not given, the task's).")]
Assignee = Annotated[str | None, typer.Option(help="Who the jobs are for.")]
Misfire = Annotated[
    str | None,
    typer.Option(help="Fire times missed while down: skip, run_once (the default), run_all."),
]
Overlap = Annotated[
    str | None,
    typer.Option(help="When the last run is unfinished: allow (the default), skip, queue."),
]
Jitter = Annotated[float | None, typer.Option(help="Delay each job randomly up to N seconds.")]
StartAt = Annotated[str | None, typer.Option(help="Fire nothing before this ISO 8601 time.")]
EndAt = Annotated[str | None, typer.Option(help="Fire nothing after this ISO 8601 time.")]
Description = Annotated[str | None, typer.Option(help="A note for people.")]
CatchupLimit = Annotated[
    int | None, typer.Option(help="Most missed or waiting fire times kept (default 100).")
]
Count = Annotated[int, typer.Option(help="How many upcoming fire times to show.")]


def _checked(build: Callable[[], T]) -> T:
    """Run ``build``; bad input becomes one line and exit code 2."""
    try:
        return build()
    except InvalidInput as exc:
        fail(exc.message)


async def _resolve(service: ScheduleService, ref: str) -> Schedule:
    """A schedule by id, else by name."""
    if ref.isascii() and ref.isdigit():
        try:
            return await service.get(int(ref))
        except NotFound:
            pass
    found = await service.find(ref)
    if found is None:
        raise NotFound(f"schedule {ref!r} does not exist (conveyor schedules ls lists them)")
    return found


def _moment(field: str, text: str, zone: str) -> datetime:
    """An ISO 8601 date-time; without an offset, read in ``zone``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            field, f"{text!r} is not an ISO 8601 date-time like 2026-12-01T09:00:00-03:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))


def _date(field: str, text: str, zone: str) -> datetime | None:
    """A ``--start-at`` or ``--end-at``: a date-time, or ``none`` for no date."""
    return None if text.strip().lower() == NO_DATE else _moment(field, text, zone)


def _count(field: str, value: int, high: int) -> int:
    if not 1 <= value <= high:
        raise InvalidInput(field, f"must be a whole number from 1 to {high}")
    return value


def _spec_fields(params: Mapping[str, Any], zone: str) -> dict[str, Any]:
    """The schedule fields given on the command line, parsed; absent ones left out."""
    fields = {key: params[key] for key in SPEC_OPTIONS if params.get(key) is not None}
    if params.get("payload") is not None:
        fields["payload"] = parse_payload(params["payload"])
    for key in ("start_at", "end_at"):
        if params.get(key) is not None:
            fields[key] = _date(key, params[key], zone)
    return fields


def _timing(params: Mapping[str, Any], zone: str, start: datetime | None) -> Timing:
    """The timing from exactly one of the expression, ``--every`` and ``--at``. An
    interval counts from ``start`` when there is one (else from the Unix epoch)."""
    given = [key for key in WHEN_OPTIONS if params.get(key) is not None]
    if len(given) != 1:
        raise InvalidInput(
            "when",
            "give exactly one of a cron expression, --every or --at"
            + (f" (got {len(given)})" if given else ""),
        )
    at = params.get("at")
    choices = {
        "cron": params.get("expression"),
        "interval": params.get("interval"),
        "at": None if at is None else _moment("at", at, zone),
    }
    return timing_from(choices, zone, start)


def _edited_timing(
    spec: ScheduleSpec, params: Mapping[str, Any], changes: Mapping[str, Any]
) -> Timing | None:
    """The timing ``edit`` asks for, or ``None`` to keep it. A new ``--tz`` reads the
    current rule in that zone; an interval counts from a new ``--start-at``."""
    zone = params.get("tz") or spec.timing.timezone
    start = changes.get("start_at", spec.start_at)
    if any(params.get(key) is not None for key in WHEN_OPTIONS):
        return _timing(params, zone, start)
    return retimed(spec.timing, params.get("tz"), start, restart="start_at" in changes)


def _new_spec(params: Mapping[str, Any]) -> ScheduleSpec:
    """The schedule ``add`` describes, validated."""
    zone = check_timezone(params.get("tz") or "UTC")
    fields = _spec_fields(params, zone)
    fields.setdefault("name", f"{fields['task'][:120]}-{secrets.token_hex(3)}")
    timing = _timing(params, zone, fields.get("start_at"))
    return schedule_spec(timing=timing, enabled=not params["paused"], **fields)


def _local(times: list[datetime], zone: ZoneInfo) -> list[str]:
    """Fire times as ISO 8601 in ``zone``, for JSON output."""
    return [moment.astimezone(zone).isoformat() for moment in times]


def _print_json(schedule: Schedule, upcoming: list[datetime], **extra: Any) -> None:
    local = _local(upcoming, schedule.spec.timing.zone)
    console.print_json(to_json(schedule_record(schedule, upcoming=local, **extra)))


def _print_schedule(schedule: Schedule, upcoming: list[datetime], verb: str = "") -> None:
    """A schedule's headline, rule in words, and its next fire times."""
    timing = schedule.spec.timing
    console.print(
        f"schedule [bold]{schedule.id}[/] {schedule.name}{verb}: {schedule_state(schedule)}, "
        f"{schedule.spec.job.task} - {escape(timing.describe())}",
        highlight=False,
        soft_wrap=True,
    )
    if not schedule.spec.enabled:
        console.print("paused: it makes no jobs until `conveyor schedules resume`", highlight=False)
    else:
        _print_upcoming(upcoming, timing.zone)


def _print_upcoming(upcoming: list[datetime], zone: ZoneInfo) -> None:
    if not upcoming:
        console.print("no fire times left", highlight=False)
        return
    runs = "next run" if len(upcoming) == 1 else f"next {len(upcoming)} runs"
    console.print(f"{runs} in {zone.key}:", highlight=False)
    for line in upcoming_lines(upcoming, zone):
        console.print(f"  {line}", highlight=False)


@schedules_app.command("add")
def add(
    ctx: typer.Context,
    task: Annotated[str, typer.Option(help="The task each job runs.", show_default=False)],
    expression: Annotated[
        str | None,
        typer.Argument(
            metavar="CRON",
            help="A cron expression like '*/5 * * * *', or @daily.",
            show_default=False,
        ),
    ] = None,
    payload: Annotated[str, typer.Option(help="The jobs' payload, as JSON.")] = "{}",
    interval: Every = None,
    at: At = None,
    tz: Zone = None,
    name: Name = None,
    queue: Queue = None,
    priority: Priority = None,
    assignee: Assignee = None,
    misfire: Misfire = None,
    overlap: Overlap = None,
    jitter: Jitter = None,
    start_at: StartAt = None,
    end_at: EndAt = None,
    description: Description = None,
    catchup_limit: CatchupLimit = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    as_json: AsJson = False,
) -> None:
    """Create a schedule from a cron expression, --every or --at.

    Its times are read in --tz, UTC if not given; an interval counts from --start-at.
    """
    spec = _checked(lambda: _new_spec(ctx.params))

    async def act(service: ScheduleService) -> tuple[Schedule, list[datetime]]:
        schedule = await service.create(spec)
        return schedule, service.upcoming(schedule, 5)

    schedule, upcoming = run_with_schedules(ctx, act)
    if as_json:
        _print_json(schedule, upcoming)
    else:
        _print_schedule(schedule, upcoming, " created")


@schedules_app.command("ls")
def list_schedules(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The tenant's schedules, by name."""

    async def fetch(service: ScheduleService) -> list[Schedule]:
        return await service.list_schedules()

    found = run_with_schedules(ctx, fetch)
    if as_json:
        console.print_json(to_json([schedule_record(s) for s in found]))
    elif not found:
        console.print("no schedules yet (conveyor schedules add makes one)")
    else:
        console.print(schedules_table(found))


@schedules_app.command("show")
def show(
    ctx: typer.Context,
    ref: Ref,
    count: Count = 5,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.")] = 10,
    as_json: AsJson = False,
) -> None:
    """A schedule's settings, its next fire times and its recent runs."""
    _checked(lambda: (_count("count", count, MAX_PREVIEW), _count("runs", runs, MAX_LIST)))

    async def fetch(service: ScheduleService) -> tuple[Schedule, list[datetime], list[ScheduleRun]]:
        schedule = await _resolve(service, ref)
        history = await service.runs(schedule.id, runs)
        return schedule, service.upcoming(schedule, count), history

    schedule, upcoming, history = run_with_schedules(ctx, fetch)
    if as_json:
        _print_json(schedule, upcoming, runs=history)
        return
    _print_schedule(schedule, upcoming)
    _print_details(schedule)
    if history:
        console.print(schedule_runs_table(history, schedule.spec.timing.zone))
    else:
        console.print("no runs yet", highlight=False)


def _print_details(schedule: Schedule) -> None:
    spec = schedule.spec
    zone = spec.timing.zone
    job = spec.job
    lines = [
        f"payload: {json.dumps(job.payload)}",
        f"job: queue={job.queue or '(task default)'} priority="
        f"{job.priority if job.priority is not None else '(task default)'}"
        f" assignee={job.assignee or '-'}",
        f"policies: misfire={spec.misfire} overlap={spec.overlap} jitter={spec.jitter:g}s"
        f" catchup_limit={spec.catchup_limit}",
        "dates: from "
        + (f"{spec.start_at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}" if spec.start_at else "now")
        + " until "
        + (f"{spec.end_at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}" if spec.end_at else "forever"),
        f"source: {schedule.source} by {schedule.owner}, revision {schedule.revision}",
    ]
    if spec.description:
        lines.append(f"description: {spec.description}")
    for line in lines:
        console.print(escape(line), highlight=False, soft_wrap=True)


def _set_enabled(ctx: typer.Context, ref: str, enabled: bool) -> None:
    async def act(service: ScheduleService) -> tuple[Schedule, list[datetime]]:
        schedule = await service.set_enabled((await _resolve(service, ref)).id, enabled)
        return schedule, service.upcoming(schedule, 1)

    schedule, upcoming = run_with_schedules(ctx, act)
    _print_schedule(schedule, upcoming)


@schedules_app.command("pause")
def pause(ctx: typer.Context, ref: Ref) -> None:
    """Stop making jobs (the ones already made still run)."""
    _set_enabled(ctx, ref, False)


@schedules_app.command("resume")
def resume(ctx: typer.Context, ref: Ref) -> None:
    """Make jobs again from now on (times missed while paused are not made up)."""
    _set_enabled(ctx, ref, True)


def stdin_is_terminal() -> bool:
    """Whether a person can answer a question."""
    return sys.stdin.isatty()


@schedules_app.command("rm")
def remove(
    ctx: typer.Context,
    ref: Ref,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Delete a schedule and its run history (the jobs it made stay).

    At a terminal it asks first, unless --yes; scripts (no terminal) are not asked.
    """
    schedule = run_with_schedules(ctx, lambda service: _resolve(service, ref))
    question = f"delete schedule {schedule.id} {schedule.name} and its run history?"
    if not yes and stdin_is_terminal() and not typer.confirm(question):
        errors.print("nothing deleted", highlight=False)
        raise typer.Exit(1)

    async def act(service: ScheduleService) -> None:
        await service.delete(schedule.id)

    run_with_schedules(ctx, act)
    console.print(f"schedule {schedule.id} {schedule.name} deleted", highlight=False)


@schedules_app.command("runs")
def list_runs(
    ctx: typer.Context,
    ref: Ref,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: AsJson = False,
) -> None:
    """What each fire time did: the job it made (and that job's state), or why none."""
    _checked(lambda: _count("limit", limit, MAX_LIST))

    async def fetch(service: ScheduleService) -> tuple[Schedule, list[ScheduleRun]]:
        schedule = await _resolve(service, ref)
        return schedule, await service.runs(schedule.id, limit)

    schedule, history = run_with_schedules(ctx, fetch)
    if as_json:
        console.print_json(to_json(history))
    elif not history:
        console.print(f"schedule {schedule.name} has not fired yet", highlight=False)
    else:
        console.print(schedule_runs_table(history, schedule.spec.timing.zone))


@schedules_app.command("edit")
def edit(
    ctx: typer.Context,
    ref: Ref,
    expression: Annotated[
        str | None, typer.Option("--cron", help="A new cron expression.", show_default=False)
    ] = None,
    interval: Every = None,
    at: At = None,
    tz: Zone = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    task: Annotated[str | None, typer.Option(help="A new task.")] = None,
    payload: Payload = None,
    queue: Queue = None,
    priority: Priority = None,
    assignee: Assignee = None,
    misfire: Misfire = None,
    overlap: Overlap = None,
    jitter: Jitter = None,
    start_at: StartAt = None,
    end_at: EndAt = None,
    description: Description = None,
    catchup_limit: CatchupLimit = None,
    as_json: AsJson = False,
) -> None:
    """Change a schedule: only the options given change.

    --tz reads the same rule in another zone; times without an offset are read in
    the schedule's zone. --start-at none or --end-at none removes that date. The
    next fire time is worked out again from now.
    """
    params = ctx.params
    if all(params[key] is None for key in params if key not in ("ref", "as_json")):
        fail("nothing to change: give at least one option (conveyor schedules edit --help)")

    async def act(service: ScheduleService) -> tuple[Schedule, list[datetime]]:
        current = await _resolve(service, ref)
        zone = check_timezone(params["tz"]) if params["tz"] else current.spec.timing.timezone
        changes = _spec_fields(params, zone)
        timing = _edited_timing(current.spec, params, changes)
        if timing is not None:
            changes["timing"] = timing
        schedule = await service.update(current.id, changes)
        return schedule, service.upcoming(schedule, 5)

    schedule, upcoming = run_with_schedules(ctx, act)
    if as_json:
        _print_json(schedule, upcoming)
    else:
        _print_schedule(schedule, upcoming, " changed")


@schedules_app.command("preview")
def preview(
    ctx: typer.Context,
    expression: Annotated[
        str | None,
        typer.Argument(
            metavar="CRON", help="A cron expression like '0 19 * * *'.", show_default=False
        ),
    ] = None,
    interval: Every = None,
    at: At = None,
    tz: Zone = None,
    start_at: StartAt = None,
    end_at: EndAt = None,
    count: Count = 10,
    as_json: AsJson = False,
) -> None:
    """When a cron expression (or --every, --at) would fire; needs no database.

    Times are read in --tz, UTC if not given.
    """

    def plan() -> tuple[Timing, list[datetime]]:
        _count("count", count, MAX_PREVIEW)
        zone = check_timezone(tz or "UTC")
        fields = _spec_fields(ctx.params, zone)
        timing = _timing(ctx.params, zone, fields.get("start_at"))
        spec = schedule_spec("preview", timing, "preview", **fields)
        return timing, spec.upcoming(utcnow(), count)

    timing, upcoming = _checked(plan)
    if as_json:
        when = {"when": timing.describe(), "timezone": timing.timezone}
        console.print_json(to_json(when | {"upcoming": _local(upcoming, timing.zone)}))
        return
    console.print(escape(timing.describe()), highlight=False, soft_wrap=True)
    _print_upcoming(upcoming, timing.zone)
