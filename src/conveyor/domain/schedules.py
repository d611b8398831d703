"""Schedules: which job to create when, and what to do after downtime or while the
previous run is still going.

The decisions live here, as pure functions of a schedule and the current time
(:func:`plan_firing`); the scheduler loop only carries them out, so every misfire
and overlap rule is tested without a database or a real clock.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import JSON, check_name, check_no_nul, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.timing import Timing, check_moment

DEFAULT_MISFIRE_GRACE = timedelta(seconds=60)
"""A fire time this late still counts as on time (a short restart is not downtime)."""
DEFAULT_CATCHUP_LIMIT = 100
SCAN_FACTOR = 2
"""Walk at most this many catch-up limits of fire times one by one; further behind,
look back from now instead (each step re-reads the cron expression)."""
MAX_CATCHUP_LIMIT = 10_000
MAX_JITTER_SECONDS = 3600.0
MAX_DESCRIPTION = 1000

E = TypeVar("E", bound=StrEnum)


class MisfirePolicy(StrEnum):
    """What to do with fire times missed while no scheduler ran."""

    SKIP = "skip"
    """Run none of them; carry on from the next fire time."""
    RUN_ONCE = "run_once"
    """Run once for the whole missed period (the latest missed fire time)."""
    RUN_ALL = "run_all"
    """Run each missed fire time, oldest first, up to the catch-up limit."""


class OverlapPolicy(StrEnum):
    """What to do when a fire time comes and the previous run has not finished."""

    ALLOW = "allow"
    """Start the new run anyway."""
    SKIP = "skip"
    """Record the fire time as skipped."""
    QUEUE = "queue"
    """Hold the fire time and start it when the previous run ends (oldest first)."""


class ScheduleSource(StrEnum):
    """Who owns a schedule's definition."""

    API = "api"
    CODE = "code"
    """Declared with ``@app.periodic``: edited in code, synced at start."""


class RunOutcome(StrEnum):
    """What became of one fire time."""

    ENQUEUED = "enqueued"
    SKIPPED = "skipped"
    FAILED = "failed"
    """The job could not be created (the reason says why)."""


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """The job each firing creates; ``None`` fields take the task's settings."""

    task: str
    payload: JSON = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    assignee: str | None = None

    def options(self) -> dict[str, Any]:
        """The enqueue options this template sets."""
        found = {"queue": self.queue, "priority": self.priority, "assignee": self.assignee}
        return {key: value for key, value in found.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a person (or ``@app.periodic``) says a schedule is. Build it with
    :func:`schedule_spec`."""

    name: str
    timing: Timing
    job: JobTemplate
    enabled: bool = True
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: float = 0.0
    description: str = ""
    misfire: MisfirePolicy = MisfirePolicy.RUN_ONCE
    overlap: OverlapPolicy = OverlapPolicy.ALLOW
    catchup_limit: int = DEFAULT_CATCHUP_LIMIT

    def first_fire_after(self, now: datetime) -> datetime | None:
        """The first fire time after ``now`` within the start and end dates."""
        after = now
        if self.start_at is not None and self.start_at > now:
            after = self.start_at - timedelta(microseconds=1)
        return self.within_dates(self.timing.next_after(after))

    def within_dates(self, fire_at: datetime | None) -> datetime | None:
        """``fire_at``, or ``None`` if it is past the end date."""
        if fire_at is None or (self.end_at is not None and fire_at > self.end_at):
            return None
        return fire_at

    def upcoming(
        self, after: datetime, count: int, until: datetime | None = None
    ) -> list[datetime]:
        """The next ``count`` fire times after ``after``, within the dates."""
        if self.start_at is not None and self.start_at > after:
            after = self.start_at - timedelta(microseconds=1)
        limit = (
            min(d for d in (until, self.end_at) if d is not None) if until or self.end_at else None
        )
        return self.timing.upcoming(after, count, limit)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule and where it stands."""

    id: int
    tenant_id: str
    spec: ScheduleSpec
    source: ScheduleSource
    owner: str
    revision: int
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_job_id: int | None
    pending: tuple[datetime, ...]
    """Fire times held behind a running job (overlap policy ``queue``), oldest first."""
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        """The schedule's name, unique in its tenant."""
        return self.spec.name


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """One recorded fire time: the job it made (and that job's state now), or why none."""

    schedule_id: int
    fire_at: datetime
    outcome: RunOutcome
    reason: str
    job_id: int | None
    job_state: JobState | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Firing:
    """One fire time and what to do with it."""

    fire_at: datetime
    outcome: RunOutcome
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FiringPlan:
    """What the scheduler does for one schedule now: fire times to start or to record
    as skipped, and the schedule's new position."""

    firings: tuple[Firing, ...]
    next_fire_at: datetime | None
    pending: tuple[datetime, ...]

    def to_start(self) -> list[datetime]:
        """The fire times that create a job, in order."""
        return [f.fire_at for f in self.firings if f.outcome is RunOutcome.ENQUEUED]


def plan_firing(
    schedule: Schedule,
    now: datetime,
    previous_running: bool,
    grace: timedelta = DEFAULT_MISFIRE_GRACE,
) -> FiringPlan:
    """Decide what a schedule does at ``now``.

    Fire times up to ``now`` are due; those more than ``grace`` late were missed and
    follow the misfire policy. Then the overlap policy applies: ``previous_running``
    says whether the schedule's last job has not finished yet.
    """
    spec = schedule.spec
    due, next_fire_at = _due_times(schedule, now)
    firings = _apply_misfire(spec, due, now - grace)
    wanted = [f.fire_at for f in firings if f.outcome is RunOutcome.ENQUEUED]
    recorded = [f for f in firings if f.outcome is not RunOutcome.ENQUEUED]
    start, hold, skipped = _apply_overlap(spec, [*schedule.pending, *wanted], previous_running)
    recorded += [
        Firing(t, RunOutcome.SKIPPED, "the previous run was still running") for t in skipped
    ]
    hold, dropped = hold[-spec.catchup_limit :], hold[: -spec.catchup_limit]
    recorded += [Firing(t, RunOutcome.SKIPPED, "too many runs waiting") for t in dropped]
    started = [Firing(t, RunOutcome.ENQUEUED) for t in start]
    ordered = sorted([*recorded, *started], key=lambda f: f.fire_at)
    return FiringPlan(tuple(ordered), next_fire_at, tuple(hold))


def _due_times(schedule: Schedule, now: datetime) -> tuple[list[datetime], datetime | None]:
    """The latest fire times from ``next_fire_at`` up to ``now`` (at most the catch-up
    limit: older ones are forgotten, not even recorded), and the first one after ``now``.

    Far behind (an every-second schedule after a day down) the walk stops after
    ``SCAN_FACTOR`` catch-up limits of fire times and looks back from ``now`` instead.
    """
    spec = schedule.spec
    due: deque[datetime] = deque(maxlen=spec.catchup_limit)
    current = schedule.next_fire_at
    for _ in range(SCAN_FACTOR * spec.catchup_limit):
        if current is None or current > now:
            return list(due), current
        due.append(current)
        current = spec.within_dates(spec.timing.next_after(current))
    return _latest_due(spec, due, now)


def _latest_due(
    spec: ScheduleSpec, walked: deque[datetime], now: datetime
) -> tuple[list[datetime], datetime | None]:
    """The latest ``catchup_limit`` fire times up to ``now``, after those ``walked``
    already: look back from ``now`` over a window that doubles until it holds enough
    of them (or reaches the walk's end, whose times then count too), so a schedule with
    idle hours or days is served as well."""
    last = walked[-1]
    span = timedelta(seconds=spec.catchup_limit + 1)
    while True:
        restart = max(last, now - span)
        due = deque(walked if restart == last else (), maxlen=spec.catchup_limit)
        current = spec.within_dates(spec.timing.next_after(restart))
        while current is not None and current <= now:
            due.append(current)
            current = spec.within_dates(spec.timing.next_after(current))
        if len(due) == spec.catchup_limit or restart == last:
            return list(due), current
        span *= 2


def _apply_misfire(spec: ScheduleSpec, due: list[datetime], cutoff: datetime) -> list[Firing]:
    """Mark missed fire times (before ``cutoff``) as the misfire policy says."""
    missed = [t for t in due if t < cutoff]
    on_time = [t for t in due if t >= cutoff]
    if spec.misfire is MisfirePolicy.RUN_ALL:
        run = missed
    elif spec.misfire is MisfirePolicy.RUN_ONCE and not on_time:
        run = missed[-1:]
    else:
        run = []
    reason = f"missed (misfire policy {spec.misfire.value})"
    return [
        *(
            Firing(t, RunOutcome.ENQUEUED if t in run else RunOutcome.SKIPPED, reason)
            for t in missed
        ),
        *(Firing(t, RunOutcome.ENQUEUED) for t in on_time),
    ]


def _apply_overlap(
    spec: ScheduleSpec, queue: list[datetime], previous_running: bool
) -> tuple[list[datetime], list[datetime], list[datetime]]:
    """Split waiting fire times into (start now, keep waiting, skip) by the overlap
    policy. Under ``skip`` and ``queue`` one run at a time: the oldest starts when
    nothing runs; ``skip`` drops the others, ``queue`` keeps them."""
    if spec.overlap is OverlapPolicy.ALLOW or not queue:
        return queue, [], []
    if spec.overlap is OverlapPolicy.SKIP:
        return ([], [], queue) if previous_running else (queue[:1], [], queue[1:])
    return ([], queue, []) if previous_running else (queue[:1], queue[1:], [])


def message_id(schedule_id: int, fire_at: datetime) -> str:
    """The idempotency key of a firing: a second scheduler (or a restart) that fires the
    same time finds the first job instead of making another."""
    return f"schedule:{schedule_id}:{fire_at.astimezone(UTC).isoformat()}"


def jitter_delay(spec: ScheduleSpec, rng: random.Random | None = None) -> float:
    """A random delay from 0 to the schedule's jitter, in seconds."""
    if spec.jitter <= 0:
        return 0.0
    return (rng or random).uniform(0.0, spec.jitter)


def schedule_spec(
    name: str,
    timing: Timing,
    task: str,
    payload: JSON = None,
    *,
    queue: str | None = None,
    priority: int | None = None,
    assignee: str | None = None,
    enabled: bool = True,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    jitter: float = 0.0,
    description: str = "",
    misfire: MisfirePolicy | str = MisfirePolicy.RUN_ONCE,
    overlap: OverlapPolicy | str = OverlapPolicy.ALLOW,
    catchup_limit: int = DEFAULT_CATCHUP_LIMIT,
) -> ScheduleSpec:
    """Validate every field and build a :class:`ScheduleSpec`; errors name the field."""
    template = _check_template(task, payload, queue, priority, assignee)
    start, end = _check_dates(start_at, end_at)
    return ScheduleSpec(
        name=check_name("name", name),
        timing=timing,
        job=template,
        enabled=_check_bool("enabled", enabled),
        start_at=start,
        end_at=end,
        jitter=_check_jitter(jitter),
        description=_check_description(description),
        misfire=_check_choice("misfire", MisfirePolicy, misfire),
        overlap=_check_choice("overlap", OverlapPolicy, overlap),
        catchup_limit=_check_catchup(catchup_limit),
    )


def change_spec(spec: ScheduleSpec, changes: Mapping[str, Any]) -> ScheduleSpec:
    """``spec`` with ``changes`` applied (same names as :func:`schedule_spec`), revalidated."""
    fields: dict[str, Any] = {
        "name": spec.name,
        "timing": spec.timing,
        "task": spec.job.task,
        "payload": spec.job.payload,
        "queue": spec.job.queue,
        "priority": spec.job.priority,
        "assignee": spec.job.assignee,
        "enabled": spec.enabled,
        "start_at": spec.start_at,
        "end_at": spec.end_at,
        "jitter": spec.jitter,
        "description": spec.description,
        "misfire": spec.misfire,
        "overlap": spec.overlap,
        "catchup_limit": spec.catchup_limit,
    }
    unknown = set(changes) - set(fields)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not a schedule field")
    fields.update(changes)
    return schedule_spec(**fields)


def _check_template(
    task: str, payload: JSON, queue: str | None, priority: int | None, assignee: str | None
) -> JobTemplate:
    options: dict[str, Any] = {"queue": queue, "priority": priority, "assignee": assignee}
    # Building a job once runs every job-field check with the job's own messages.
    new_job(task, payload, **{key: value for key, value in options.items() if value is not None})
    return JobTemplate(task, {} if payload is None else payload, queue, priority, assignee)


def _check_dates(
    start_at: datetime | None, end_at: datetime | None
) -> tuple[datetime | None, datetime | None]:
    start = None if start_at is None else check_moment("start_at", start_at)
    end = None if end_at is None else check_moment("end_at", end_at)
    if start is not None and end is not None and end <= start:
        raise InvalidInput("end_at", "must be after start_at")
    return start, end


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false")
    return value


def _check_jitter(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("jitter", "must be a number of seconds")
    if not 0 <= value <= MAX_JITTER_SECONDS:
        raise InvalidInput("jitter", f"must be from 0 to {MAX_JITTER_SECONDS:.0f} seconds")
    return float(value)


def _check_description(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InvalidInput("description", f"must be text of at most {MAX_DESCRIPTION} characters")
    return check_no_nul("description", value)


def _check_choice(name: str, kind: type[E], value: object) -> E:
    try:
        return kind(str(value))
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise InvalidInput(name, f"must be one of {choices}") from None


def _check_catchup(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CATCHUP_LIMIT:
        raise InvalidInput("catchup_limit", f"must be a whole number from 1 to {MAX_CATCHUP_LIMIT}")
    return value
