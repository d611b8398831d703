"""Request and response bodies of ``/api/v1/schedules`` (pydantic models, in the OpenAPI).

The request models keep plain types and leave the checks to the domain, whose
messages name the field and the problem (``cron: minute field: 61 is out of range
0-59``). A schedule's timing is given as exactly one of ``cron`` (read in
``timezone``), ``interval`` or ``at``; the models turn those into a
:class:`~conveyor.domain.timing.Timing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from conveyor.domain.calendar_plan import Occurrence
from conveyor.domain.errors import InvalidInput
from conveyor.domain.lifecycle import JobState
from conveyor.domain.schedules import (
    MisfirePolicy,
    OverlapPolicy,
    RunOutcome,
    Schedule,
    ScheduleRun,
    ScheduleSource,
    ScheduleSpec,
    schedule_spec,
)
from conveyor.domain.timing import (
    EPOCH,
    LAST_MOMENT,
    TIMING_CHOICES,
    Timing,
    TimingKind,
    check_timezone,
    retimed,
    timing_from,
)
from conveyor.web.schemas import Body

TIMING_FIELDS = (*TIMING_CHOICES, "timezone")
DEFAULT_TIMEZONE = "UTC"
PREVIEW_NAME = "preview"
"""The name and task a preview without them is checked with."""


def _in_range(value: datetime) -> datetime:
    """Refuse a zoned date-time outside 1970-2999: near the ends of ``datetime``'s
    range, moving it to UTC or stepping a timing past it overflows."""
    if value.tzinfo is not None and not EPOCH <= value < LAST_MOMENT:
        raise PydanticCustomError("date_range", "must be a date-time from 1970 to 2999")
    return value


Instant = Annotated[datetime, AfterValidator(_in_range)]
"""A date-time a schedule may name (a missing time zone is the domain's to refuse)."""
AwareInstant = Annotated[AwareDatetime, AfterValidator(_in_range)]
"""A zoned date-time from 1970 to 2999 (for query parameters)."""


def zone_named(field: str, name: object) -> str:
    """The IANA zone ``name``, or ``InvalidInput`` naming ``field``."""
    try:
        return check_timezone(name)
    except InvalidInput as exc:
        raise InvalidInput(field, exc.problem) from None


Interval = Annotated[
    Any,
    WithJsonSchema(
        {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
    ),
]


class ScheduleFields(Body):
    """The fields of a schedule that create, preview and change share."""

    cron: str | None = Field(
        default=None,
        examples=["0 19 * * *"],
        description="A cron expression (5 fields, or 6 with seconds first, or `@daily`), "
        "read in `timezone`",
    )
    interval: Interval = Field(
        default=None,
        examples=[900, "15m"],
        description="Seconds between runs, or a duration like `90s`, `15m`, `2h`, `1d`; "
        "counted from `start_at` when given, else from the Unix epoch",
    )
    at: Instant | None = Field(
        default=None, description="A one-off run at this date-time (with a time zone)"
    )
    timezone: str | None = Field(
        default=None,
        examples=["America/Sao_Paulo"],
        description="The IANA zone the timing is read and shown in (default UTC)",
    )
    task: str | None = Field(default=None, examples=["reports.build"])
    payload: Any = Field(default=None, examples=[{"customer": 42}])
    queue: str | None = Field(default=None, description="Default: the task's queue")
    priority: int | None = Field(default=None, description="0 highest .. 9 lowest")
    assignee: str | None = None
    enabled: bool | None = Field(default=None, description="Default true; false is paused")
    start_at: Instant | None = Field(default=None, description="No run before this")
    end_at: Instant | None = Field(default=None, description="No run after this")
    jitter: float | None = Field(
        default=None, description="Start each run up to this many seconds late, at random"
    )
    description: str | None = Field(default=None, description="Free text")
    misfire: MisfirePolicy | None = Field(
        default=None, description="What to do with runs missed while down (default run_once)"
    )
    overlap: OverlapPolicy | None = Field(
        default=None, description="What to do while the previous run goes on (default allow)"
    )
    catchup_limit: int | None = Field(
        default=None, description="At most this many missed or waiting runs are kept"
    )

    def _new_spec(self, placeholder: str | None = None) -> ScheduleSpec:
        """The spec the request describes; a missing name or task is ``placeholder``."""
        fields = self.model_dump(exclude_unset=True)
        timing = timing_from(
            fields, fields.get("timezone") or DEFAULT_TIMEZONE, fields.get("start_at")
        )
        for name in TIMING_FIELDS:
            fields.pop(name, None)
        name = fields.pop("name", placeholder)
        task = fields.pop("task", placeholder)
        return schedule_spec(name, timing, task, fields.pop("payload", None), **fields)


class ScheduleIn(ScheduleFields):
    """A new schedule: a name, one of ``cron``, ``interval`` or ``at``, and the job to
    create each time. Unset options take the task's settings or the defaults."""

    name: str = Field(examples=["nightly-report"], description="Unique in the tenant")
    task: str = Field(examples=["reports.build"])

    def spec(self) -> ScheduleSpec:
        """The validated schedule."""
        return self._new_spec()


class PreviewIn(ScheduleFields):
    """A schedule to preview: the same fields as a new one, ``name`` and ``task`` optional."""

    name: str | None = None

    def spec(self) -> ScheduleSpec:
        """The validated schedule (a placeholder name and task where none is given)."""
        return self._new_spec(PREVIEW_NAME)


class ScheduleChange(ScheduleFields):
    """Changes to a schedule; a field left out keeps its value, ``null`` clears the
    optional ones. Giving ``cron``, ``interval`` or ``at`` replaces the timing; giving
    only ``timezone`` keeps it and reads it in the new zone."""

    name: str | None = None
    revision: int | None = Field(
        default=None, description="Refuse the change (409) unless the schedule is still at it"
    )

    def changes(self, current: ScheduleSpec) -> dict[str, Any]:
        """The changes to ``current``, by ``schedule_spec`` field name."""
        fields = self.model_dump(exclude_unset=True, exclude={"revision"})
        timing = _changed_timing(fields, current)
        for name in TIMING_FIELDS:
            fields.pop(name, None)
        if timing is not None:
            fields["timing"] = timing
        return fields


def _changed_timing(fields: dict[str, Any], current: ScheduleSpec) -> Timing | None:
    """The timing the changes give, or ``current``'s in a new zone (or, for an interval,
    from a new start), or ``None`` when it stays as it is."""
    zone = fields.get("timezone") or current.timing.timezone
    start = fields.get("start_at", current.start_at)
    if any(fields.get(name) is not None for name in TIMING_CHOICES):
        return timing_from(fields, zone, start)
    return retimed(current.timing, fields.get("timezone"), start, restart="start_at" in fields)


# -- responses -------------------------------------------------------------------------


class RunTimeOut(BaseModel):
    """A fire time in the schedule's zone (with its offset), and in UTC."""

    local: datetime
    utc: datetime

    @classmethod
    def of(cls, at: datetime, zone: ZoneInfo) -> RunTimeOut:
        """``at`` shown in ``zone``."""
        return cls(local=at.astimezone(zone), utc=at.astimezone(UTC))

    @classmethod
    def each(cls, times: Sequence[datetime], timing: Timing) -> list[RunTimeOut]:
        """Each of ``times`` in the zone of ``timing``."""
        return [cls.of(at, timing.zone) for at in times]


class PreviewOut(BaseModel):
    """What a schedule would do: its timing in words and its next runs from now."""

    description: str = Field(examples=["At 19:00 every day (America/Sao_Paulo)"])
    timezone: str
    next_runs: list[RunTimeOut]

    @classmethod
    def of(cls, spec: ScheduleSpec, now: datetime, count: int) -> PreviewOut:
        """What ``spec`` does: its next ``count`` runs after ``now``."""
        return cls(
            description=spec.timing.describe(),
            timezone=spec.timing.timezone,
            next_runs=RunTimeOut.each(spec.upcoming(now, count), spec.timing),
        )


class ScheduleOut(BaseModel):
    """A schedule as the API shows it: its definition, its state, and its next runs."""

    id: int
    name: str
    kind: TimingKind
    cron: str | None
    interval: float | None
    at: datetime | None
    timezone: str
    timing_description: str = Field(examples=["At 19:00 every day (America/Sao_Paulo)"])
    task: str
    payload: Any
    queue: str | None
    priority: int | None
    assignee: str | None
    enabled: bool
    start_at: datetime | None
    end_at: datetime | None
    jitter: float
    description: str
    misfire: MisfirePolicy
    overlap: OverlapPolicy
    catchup_limit: int
    source: ScheduleSource
    owner: str
    revision: int
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_job_id: int | None
    pending: list[datetime]
    created_at: datetime
    updated_at: datetime
    next_runs: list[RunTimeOut]

    @classmethod
    def of(cls, schedule: Schedule, upcoming: Sequence[datetime]) -> ScheduleOut:
        """From the domain record and its next fire times."""
        spec, timing = schedule.spec, schedule.spec.timing
        kind = timing.kind
        return cls(
            **_attributes(schedule, _STATE_FIELDS),
            **_attributes(spec, _SPEC_FIELDS),
            **_attributes(spec.job, _JOB_FIELDS),
            kind=kind,
            cron=timing.cron if kind is TimingKind.CRON else None,
            interval=timing.interval if kind is TimingKind.INTERVAL else None,
            at=timing.anchor.astimezone(timing.zone) if kind is TimingKind.ONCE else None,
            timezone=timing.timezone,
            timing_description=timing.describe(),
            pending=list(schedule.pending),
            next_runs=RunTimeOut.each(upcoming, timing),
        )


_STATE_FIELDS = (
    "id",
    "source",
    "owner",
    "revision",
    "next_fire_at",
    "last_fire_at",
    "last_job_id",
    "created_at",
    "updated_at",
)
_SPEC_FIELDS = (
    "name",
    "enabled",
    "start_at",
    "end_at",
    "jitter",
    "description",
    "misfire",
    "overlap",
    "catchup_limit",
)
_JOB_FIELDS = ("task", "payload", "queue", "priority", "assignee")


def _attributes(source: object, names: Iterable[str]) -> dict[str, Any]:
    """The attributes of ``source`` that a response shows as they are."""
    return {name: getattr(source, name) for name in names}


class RunOut(BaseModel):
    """One fire time of a schedule: the job it made (and that job's state now), or why
    none was made."""

    fire_at: datetime
    outcome: RunOutcome
    reason: str
    job_id: int | None
    job_state: JobState | None
    created_at: datetime

    @classmethod
    def of(cls, run: ScheduleRun) -> RunOut:
        """From the domain record."""
        return cls(**_attributes(run, cls.model_fields))


class RunPage(BaseModel):
    """A schedule's runs, newest first; pass ``next_cursor`` as ``before`` for older ones."""

    items: list[RunOut]
    next_cursor: datetime | None


class OccurrenceOut(BaseModel):
    """One run on the calendar: planned (``outcome`` null) or past, with its outcome."""

    schedule_id: int
    schedule: str
    task: str
    at: datetime
    planned: bool
    outcome: RunOutcome | None
    reason: str
    job_id: int | None
    job_state: JobState | None

    @classmethod
    def of(cls, occurrence: Occurrence, zone: ZoneInfo) -> OccurrenceOut:
        """From the service's record, its time shown in ``zone``."""
        fields = _attributes(occurrence, cls.model_fields)
        return cls(**fields | {"at": occurrence.at.astimezone(zone)})


class CalendarOut(BaseModel):
    """Every run of the tenant's schedules from ``start`` to ``end``, oldest first, in
    ``timezone``; ``truncated`` when there were more than the limit."""

    timezone: str
    start: datetime
    end: datetime
    items: list[OccurrenceOut]
    truncated: bool
