"""Tables and JSON for the terminal."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from rich.markup import escape
from rich.table import Table

from conveyor.domain.events import Event
from conveyor.domain.jobs import Job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.schedules import RunOutcome, Schedule, ScheduleRun
from conveyor.store.protocol import QueueInfo

STATE_STYLES = {
    JobState.SCHEDULED: "cyan",
    JobState.AVAILABLE: "blue",
    JobState.RUNNING: "yellow",
    JobState.RETRYABLE: "magenta",
    JobState.COMPLETED: "green",
    JobState.DISCARDED: "red",
    JobState.CANCELLED: "dim",
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Any record (dataclasses, enums, times) as indented JSON."""
    return json.dumps(_plain(value), indent=2, ensure_ascii=False)


def state_text(state: JobState) -> str:
    """A state in its colour."""
    return f"[{STATE_STYLES[state]}]{state}[/]"


def _when(moment: datetime | None) -> str:
    """Local time; the date only when it is not today."""
    if moment is None:
        return ""
    local = moment.astimezone()
    today = datetime.now(local.tzinfo).date()
    return local.strftime("%H:%M:%S" if local.date() == today else "%Y-%m-%d %H:%M:%S")


def _progress(job: Job) -> str:
    if job.progress is None:
        return ""
    return f"{job.progress * 100:.0f}%" + (
        f" {job.progress_message}" if job.progress_message else ""
    )


def jobs_table(jobs: list[Job]) -> Table:
    """Jobs, one per row."""
    table = Table(show_lines=False, header_style="bold")
    for column in ("id", "task", "queue", "state", "prio", "attempt", "run at", "progress"):
        table.add_column(
            column,
            justify="right" if column in ("id", "prio") else "left",
            no_wrap=column != "progress",
        )
    for job in jobs:
        table.add_row(
            str(job.id),
            job.task,
            job.queue,
            state_text(job.state),
            str(job.priority),
            f"{job.attempt}/{job.max_attempts}",
            _when(job.run_at),
            _progress(job),
        )
    return table


def stats_table(counts: dict[tuple[str, JobState], int]) -> Table:
    """Counts by queue (rows) and state (columns)."""
    table = Table(header_style="bold")
    table.add_column("queue")
    for state in JobState:
        table.add_column(state_text(state), justify="right")
    table.add_column("total", justify="right")
    for queue in sorted({q for q, _ in counts}):
        row = [counts.get((queue, state), 0) for state in JobState]
        table.add_row(queue, *(str(n) for n in row), str(sum(row)))
    return table


def queues_table(queues: list[QueueInfo]) -> Table:
    """Queues with their settings and counts."""
    table = Table(header_style="bold")
    for column in ("queue", "paused", "concurrency", "available", "running", "waiting", "failed"):
        table.add_column(column)
    for q in queues:
        waiting = q.counts.get(JobState.SCHEDULED, 0) + q.counts.get(JobState.RETRYABLE, 0)
        table.add_row(
            q.name,
            "[red]paused[/]" if q.paused else "no",
            str(q.concurrency) if q.concurrency is not None else "unlimited",
            str(q.counts.get(JobState.AVAILABLE, 0)),
            str(q.counts.get(JobState.RUNNING, 0)),
            str(waiting),
            str(q.counts.get(JobState.DISCARDED, 0)),
        )
    return table


def event_line(event: Event) -> str:
    """One event as a log line."""
    data = " ".join(f"{k}={v}" for k, v in event.data.items() if k != "traceback")
    job = f" job={event.job_id}" if event.job_id is not None else ""
    return f"{_when(event.created_at)} #{event.id} {event.type}{job} {data}".rstrip()


OUTCOME_STYLES = {
    RunOutcome.ENQUEUED: "green",
    RunOutcome.SKIPPED: "yellow",
    RunOutcome.FAILED: "red",
}


def in_zone(moment: datetime | None, zone: ZoneInfo) -> str:
    """A moment as the wall-clock time of ``zone``, with the zone's abbreviation."""
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def upcoming_lines(times: list[datetime], zone: ZoneInfo) -> list[str]:
    """Fire times as lines: weekday and time in ``zone``, and in UTC when that differs."""
    lines = []
    for moment in times:
        local = f"{moment.astimezone(zone):%a} {in_zone(moment, zone)}"
        utc = in_zone(moment, ZoneInfo("UTC"))
        lines.append(local if zone.key == "UTC" else f"{local}  ({utc})")
    return lines


def schedule_state(schedule: Schedule) -> str:
    """``enabled``, ``paused``, or ``finished`` when no fire time is left."""
    if not schedule.spec.enabled:
        return "paused"
    return "enabled" if schedule.next_fire_at is not None else "finished"


def schedules_table(schedules: list[Schedule]) -> Table:
    """Schedules, one per row; times in each schedule's own zone."""
    table = Table(header_style="bold")
    for column in ("id", "name", "when", "zone", "task", "state", "next run", "last run"):
        table.add_column(
            column,
            justify="right" if column == "id" else "left",
            no_wrap=column in ("id", "state"),
            overflow="fold",
        )
    for s in schedules:
        zone = s.spec.timing.zone
        state = schedule_state(s)
        table.add_row(
            str(s.id),
            s.name,
            escape(s.spec.timing.describe().removesuffix(f" ({s.spec.timing.timezone})")),
            s.spec.timing.timezone,
            s.spec.job.task,
            f"[yellow]{state}[/]" if state == "paused" else state,
            in_zone(s.next_fire_at, zone) if state == "enabled" else "",
            in_zone(s.last_fire_at, zone),
        )
    return table


def schedule_runs_table(runs: list[ScheduleRun], zone: ZoneInfo) -> Table:
    """A schedule's runs: fire time in ``zone``, outcome, the job and its state now."""
    table = Table(header_style="bold")
    for column in ("fire time", "outcome", "job", "job state", "reason"):
        table.add_column(column, justify="right" if column == "job" else "left")
    for run in runs:
        table.add_row(
            in_zone(run.fire_at, zone),
            f"[{OUTCOME_STYLES[run.outcome]}]{run.outcome}[/]",
            str(run.job_id) if run.job_id is not None else "",
            state_text(run.job_state) if run.job_state is not None else "",
            escape(run.reason),
        )
    return table


def schedule_record(schedule: Schedule, **extra: Any) -> dict[str, Any]:
    """A schedule as JSON-ready data, with its rule in words and its state; ``extra``
    fields (upcoming fire times, runs) are added as they are."""
    record: dict[str, Any] = _plain(schedule)
    record["when"] = schedule.spec.timing.describe()
    record["state"] = schedule_state(schedule)
    record.update({key: _plain(value) for key, value in extra.items()})
    return record
