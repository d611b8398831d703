"""Turning database rows into domain records, the same way for both dialects."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from conveyor.domain.events import Event
from conveyor.domain.jobs import Artifact, Attempt, ErrorInfo, Job
from conveyor.domain.lifecycle import JobState
from conveyor.store.protocol import WorkerInfo


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


def job_from_row(row: Row, read_time: TimeReader) -> Job:
    """A :class:`Job` from a ``jobs`` row."""
    return Job(
        id=row["id"],
        tenant_id=row["tenant_id"],
        task=row["task"],
        queue=row["queue"],
        state=_STATES[row["state"]],
        priority=row["priority"],
        run_at=read_time(row["run_at"]),
        payload=read_json(row["payload"]),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        timeout=row["timeout"],
        message_id=row["message_id"],
        content_type=row["content_type"],
        content_encoding=row["content_encoding"],
        key=row["key"],
        tags=() if row["tags"] == "[]" else tuple(read_json(row["tags"]) or ()),
        assignee=row["assignee"],
        immediate=bool(row["immediate"]),
        created_at=read_time(row["created_at"]),
        updated_at=read_time(row["updated_at"]),
        started_at=_maybe(read_time, row["started_at"]),
        finished_at=_maybe(read_time, row["finished_at"]),
        lease_expires_at=_maybe(read_time, row["lease_expires_at"]),
        worker_id=row["worker_id"],
        result=read_json(row["result"]) if row["result"] is not None else None,
        error=_error(row["error"]),
        progress=row["progress"],
        progress_message=row["progress_message"],
        task_version=row["task_version"],
        created_by=row["created_by"],
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


def dump_json(value: Any) -> str | None:
    """JSON text for a column, ``None`` stays NULL."""
    return None if value is None else json.dumps(value, separators=(",", ":"))
