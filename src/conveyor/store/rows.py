"""Turning database rows into domain records, the same way for both dialects."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, Protocol

from conveyor.domain.events import Event
from conveyor.domain.jobs import Artifact, Attempt, ErrorInfo, Job
from conveyor.domain.lifecycle import JobState
from conveyor.store.protocol import QueueInfo, WorkerInfo


class Row(Protocol):
    """A result row readable by column name (``sqlite3.Row`` or a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


TimeReader = Callable[[Any], datetime]


_STATES = {state.value: state for state in JobState}


def read_json(value: Any) -> Any:
    """JSON columns: text on both stores (PostgreSQL's are loaded as text too)."""
    if value == "{}":  # the most common payload, without the parser
        return {}
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def _error(value: Any) -> ErrorInfo | None:
    data = read_json(value)
    return ErrorInfo.from_dict(data) if data else None


def _maybe(read_time: TimeReader, value: Any) -> datetime | None:
    return None if value is None else read_time(value)


JOB_FIELDS = tuple(field.name for field in fields(Job))
"""A job's columns in the order of :class:`Job`'s fields (see :func:`job_from_values`)."""

_job_values = operator.itemgetter(*JOB_FIELDS)


def job_from_row(row: Row, read_time: TimeReader) -> Job:
    """A :class:`Job` from a ``jobs`` row."""
    return job_from_values(_job_values(row), read_time)


def job_from_values(values: Sequence[Any], read_time: TimeReader) -> Job:
    """A :class:`Job` from its columns in ``JOB_FIELDS`` order: what a claim returns,
    read without a name lookup per column (half the cost, on every job a worker runs)."""
    (
        job_id, tenant_id, task, queue, state, priority, run_at, payload, attempt,
        max_attempts, timeout, message_id, content_type, content_encoding, key, tags,
        assignee, immediate, created_at, updated_at, started_at, finished_at,
        lease_expires_at, worker_id, result, error, progress, progress_message,
        task_version, created_by,
    ) = values  # fmt: skip
    return Job(
        job_id,
        tenant_id,
        task,
        queue,
        _STATES[state],
        priority,
        read_time(run_at),
        read_json(payload),
        attempt,
        max_attempts,
        timeout,
        message_id,
        content_type,
        content_encoding,
        key,
        () if tags == "[]" else tuple(read_json(tags) or ()),
        assignee,
        bool(immediate),
        read_time(created_at),
        read_time(updated_at),
        _maybe(read_time, started_at),
        _maybe(read_time, finished_at),
        _maybe(read_time, lease_expires_at),
        worker_id,
        read_json(result) if result is not None else None,
        _error(error),
        progress,
        progress_message,
        task_version,
        created_by,
    )


def attempt_from_row(row: Row, read_time: TimeReader) -> Attempt:
    """An :class:`Attempt` from a ``job_attempts`` row."""
    return Attempt(
        job_id=row["job_id"],
        attempt=row["attempt"],
        worker_id=row["worker_id"],
        started_at=read_time(row["started_at"]),
        finished_at=_maybe(read_time, row["finished_at"]),
        outcome=row["outcome"],
        error=_error(row["error"]),
        task_version=row["task_version"],
    )


def event_from_row(row: Row, read_time: TimeReader) -> Event:
    """An :class:`Event` from an ``events`` row."""
    return Event(
        id=row["id"],
        tenant_id=row["tenant_id"],
        type=row["type"],
        job_id=row["job_id"],
        data=read_json(row["data"]) or {},
        created_at=read_time(row["created_at"]),
    )


def artifact_from_row(row: Row, read_time: TimeReader) -> Artifact:
    """An :class:`Artifact` from an ``artifacts`` row."""
    return Artifact(
        id=row["id"],
        job_id=row["job_id"],
        name=row["name"],
        size=row["size"],
        sha256=row["sha256"],
        path=row["path"],
        created_at=read_time(row["created_at"]),
    )


def worker_from_row(row: Row, read_time: TimeReader) -> WorkerInfo:
    """A :class:`WorkerInfo` from a ``workers`` row."""
    return WorkerInfo(
        id=row["id"],
        tenant_id=row["tenant_id"],
        hostname=row["hostname"],
        pid=row["pid"],
        queues=tuple(read_json(row["queues"])),
        concurrency=row["concurrency"],
        started_at=read_time(row["started_at"]),
        last_seen_at=read_time(row["last_seen_at"]),
    )


def queue_infos(
    settings: Sequence[Row], counts: Mapping[tuple[str, JobState], int]
) -> list[QueueInfo]:
    """Every queue that has a settings row or jobs, by name, with its counts by state."""
    by_name = {r["name"]: r for r in settings}
    names = sorted(set(by_name) | {queue for queue, _ in counts})
    return [
        QueueInfo(
            name=name,
            paused=bool(by_name[name]["paused"]) if name in by_name else False,
            concurrency=by_name[name]["concurrency"] if name in by_name else None,
            counts={state: n for (queue, state), n in counts.items() if queue == name},
        )
        for name in names
    ]


def dump_json(value: Any) -> str | None:
    """JSON text for a column, ``None`` stays NULL."""
    return None if value is None else json.dumps(value, separators=(",", ":"))
