"""Planning a calendar: the runs a tenant's schedules will make in a window, merged
in time order from every schedule, lazily, with optional caps per bucket (a day or an
hour of a calendar page keeps a few runs; the others are skipped, not worked out)."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from conveyor.domain.lifecycle import JobState
from conveyor.domain.schedules import RunOutcome, Schedule

MAX_PLANNING_STEPS = 10_000
"""Fire times worked out for one plan at most (runs kept, and runs skipped in a full
bucket): a plan that needs more is marked truncated and says how far it got."""
EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One run of a schedule on a calendar: planned (in the future) or past, with what
    became of it."""

    schedule_id: int
    schedule: str
    task: str
    at: datetime
    planned: bool
    outcome: RunOutcome | None = None
    reason: str = ""
    job_id: int | None = None
    job_state: JobState | None = None


class Buckets(Protocol):
    """How a calendar groups runs (days, hours) and how many planned runs each group
    keeps: the runs a group would not show are skipped, not worked out."""

    @property
    def keep(self) -> int:
        """Planned runs kept per bucket."""
        ...

    @property
    def keep_each(self) -> int:
        """Planned runs of one schedule kept per bucket."""
        ...

    def key(self, at: datetime) -> Hashable:
        """The bucket ``at`` falls in."""
        ...

    def end(self, at: datetime) -> datetime:
        """When the bucket ``at`` falls in ends."""
        ...


@dataclass
class Plan:
    """Planned runs oldest first; the buckets that had more; whether the limit cut it."""

    runs: list[Occurrence]
    full: set[Hashable] = field(default_factory=set)
    truncated: bool = False
    until: datetime | None = None
    """When truncated: the runs before this instant are all worked out, later ones not."""


class _Unbounded:
    """No buckets: every run is kept (up to the plan's limit)."""

    keep = keep_each = MAX_PLANNING_STEPS

    def key(self, at: datetime) -> Hashable:
        return None

    def end(self, at: datetime) -> datetime:
        return at


def plan_runs(
    schedules: Sequence[Schedule],
    start: datetime,
    end: datetime,
    limit: int,
    buckets: Buckets | None = None,
) -> Plan:
    """The schedules' runs in ``[start, end)`` merged in time order, lazily: each step
    works out one schedule's next run, so a schedule firing every minute costs steps
    only for the runs kept (and, in a full bucket, one step to leave it)."""
    within = buckets or _Unbounded()
    queue = _first_runs(schedules, start, end)
    plan = Plan([])
    kept: Counter[Hashable] = Counter()
    kept_each: Counter[tuple[Hashable, int]] = Counter()
    for _ in range(MAX_PLANNING_STEPS):
        if not queue or len(plan.runs) >= limit:
            break
        at, schedule_id, schedule = heapq.heappop(queue)
        key = within.key(at)
        if kept[key] < within.keep and kept_each[key, schedule_id] < within.keep_each:
            kept[key] += 1
            kept_each[key, schedule_id] += 1
            task = schedule.spec.job.task
            plan.runs.append(Occurrence(schedule_id, schedule.name, task, at, planned=True))
            following = _next_run(schedule, at, end)
        else:
            plan.full.add(key)
            # Past the bucket's end; never back to ``at`` itself (a bucket whose end a
            # clock change puts before ``at`` would repeat it forever).
            following = _next_run(schedule, max(within.end(at) - EPSILON, at), end)
        if following is not None:
            heapq.heappush(queue, (following, schedule_id, schedule))
    if queue:
        plan.truncated, plan.until = True, queue[0][0]
    return plan


def _first_runs(
    schedules: Sequence[Schedule], start: datetime, end: datetime
) -> list[tuple[datetime, int, Schedule]]:
    """Each enabled schedule's first run in ``[start, end)``: its next fire time, or
    the first one after ``start`` when the scheduler has not caught up yet."""
    found = []
    for schedule in schedules:
        first = schedule.next_fire_at
        if not schedule.spec.enabled or first is None or first >= end:
            continue
        at = first if first >= start else _next_run(schedule, start - EPSILON, end)
        if at is not None:
            found.append((at, schedule.id, schedule))
    heapq.heapify(found)
    return found


def _next_run(schedule: Schedule, after: datetime, end: datetime) -> datetime | None:
    found = schedule.spec.upcoming(after, 1, until=end)
    return found[0] if found and found[0] < end else None
