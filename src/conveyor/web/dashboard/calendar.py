"""The dashboard calendar's geometry: which days a month or week page shows, the
cells (days, or hours) runs fall in within the viewer's zone, and how a run looks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from conveyor.domain.calendar_plan import Occurrence
from conveyor.domain.schedules import RunOutcome, ScheduleRun

SHOWN_PER_DAY = 4
SHOWN_PER_HOUR = 4
KEEP_PER_DAY = 10
KEEP_PER_HOUR = 8
"""Planned runs kept per cell: the first few are shown, the others behind "+N more"."""
KEEP_EACH_PER_HOUR = 4
"""A schedule's planned runs kept per hour (per day: its first)."""
RUN_LOOKS = {RunOutcome.FAILED: "failed", RunOutcome.SKIPPED: "skipped"}


@dataclass(frozen=True, slots=True)
class CalendarRun:
    """One run as the calendar draws it: when (in the viewer's zone), its look and link."""

    occurrence: Occurrence
    local: datetime
    look: str
    """``planned``, a job state, ``skipped``, ``failed`` or ``enqueued`` (job gone)."""

    @property
    def href(self) -> str:
        """The run's job, or its schedule while it has none."""
        if self.occurrence.job_id is not None:
            return f"/jobs/{self.occurrence.job_id}"
        return f"/schedules/{self.occurrence.schedule_id}"

    @property
    def label(self) -> str:
        """The look in words, with the reason a run made no job."""
        reason = self.occurrence.reason
        return f"{self.look}: {reason}" if reason else self.look

    @property
    def title(self) -> str:
        """The schedule, what became of the run and when, for the run's tooltip."""
        name = self.occurrence.schedule or "deleted schedule"
        return f"{name} · {self.label} · {self.local:%Y-%m-%d %H:%M}"


def run_look(run: Occurrence | ScheduleRun) -> str:
    """How a run is coloured: planned, by its job's state, or why it made no job."""
    if isinstance(run, Occurrence) and run.planned:
        return "planned"
    if run.outcome in RUN_LOOKS:
        return RUN_LOOKS[run.outcome]
    return run.job_state.value if run.job_state else "enqueued"


@dataclass(frozen=True, slots=True)
class CalendarRange:
    """The days one calendar page shows, and how to move from it."""

    view: str
    anchor: date
    first: date
    days: int

    @classmethod
    def of(cls, view: str, anchor: date) -> CalendarRange:
        """The month (whole weeks, Monday first) or the week holding ``anchor``."""
        if view == "week":
            return cls(view, anchor, anchor - timedelta(days=anchor.weekday()), 7)
        month_start = anchor.replace(day=1)
        first = month_start - timedelta(days=month_start.weekday())
        next_month = _add_months(month_start, 1)
        last = next_month - timedelta(days=1)
        end = last + timedelta(days=7 - last.weekday())
        return cls(view, anchor, first, (end - first).days)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The first and the end instant, from midnight to midnight in ``zone``."""
        end = self.first + timedelta(days=self.days)
        return _midnight(self.first, zone), _midnight(end, zone)

    @property
    def previous(self) -> date:
        """The anchor of the page before."""
        if self.view == "week":
            return self.anchor - timedelta(days=7)
        return _add_months(self.anchor.replace(day=1), -1)

    @property
    def next(self) -> date:
        """The anchor of the page after."""
        if self.view == "week":
            return self.anchor + timedelta(days=7)
        return _add_months(self.anchor.replace(day=1), 1)

    @property
    def title(self) -> str:
        """``June 2030``, or the week's first and last day."""
        if self.view == "month":
            return f"{self.anchor:%B %Y}"
        last = self.first + timedelta(days=6)
        return f"{self.first:%d %b} to {last:%d %b %Y}"

    def day_list(self) -> list[date]:
        """Every day shown, in order."""
        return [self.first + timedelta(days=n) for n in range(self.days)]


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


CellKey = date | tuple[date, int]
"""A day, or an hour of a day."""


@dataclass(frozen=True, slots=True)
class Cells:
    """The calendar's cells (days, or hours for the week view) in the viewer's zone, and
    how many planned runs each keeps: more are never drawn, so never computed."""

    zone: ZoneInfo
    hourly: bool
    keep: int
    keep_each: int
    """Planned runs kept per schedule in one cell."""

    @classmethod
    def of(cls, view: str, zone: ZoneInfo) -> Cells:
        """Days of a month (a schedule's first run each), or hours of a week."""
        if view == "week":
            return cls(zone, hourly=True, keep=KEEP_PER_HOUR, keep_each=KEEP_EACH_PER_HOUR)
        return cls(zone, hourly=False, keep=KEEP_PER_DAY, keep_each=1)

    def key(self, at: datetime) -> CellKey:
        """The cell ``at`` falls in."""
        local = at.astimezone(self.zone)
        return (local.date(), local.hour) if self.hourly else local.date()

    def end(self, at: datetime) -> datetime:
        """The end of the cell ``at`` falls in (UTC)."""
        local = at.astimezone(self.zone)
        if self.hourly:
            # Counted back from ``at`` itself: a local hour rebuilt from its fields can
            # land before ``at`` in the half hour a clock change repeats.
            into = timedelta(minutes=local.minute, seconds=local.second)
            return at - into - timedelta(microseconds=local.microsecond) + timedelta(hours=1)
        return _midnight(local.date() + timedelta(days=1), self.zone)
