"""Tables and JSON for the terminal."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any

from rich.table import Table

from conveyor.domain.events import Event
from conveyor.domain.jobs import Job
from conveyor.domain.lifecycle import JobState
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
