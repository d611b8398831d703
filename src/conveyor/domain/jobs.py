"""Jobs: the records a store keeps, and the validated requests that create or edit one."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from conveyor.domain.errors import InvalidInput
from conveyor.domain.lifecycle import JobState, after_edit

DEFAULT_TENANT = "default"
DEFAULT_QUEUE = "default"
DEFAULT_PRIORITY = 5
DEFAULT_MAX_ATTEMPTS = 3
HIGHEST_PRIORITY = 0
LOWEST_PRIORITY = 9
MAX_ATTEMPTS_LIMIT = 1000
MAX_PAYLOAD_BYTES = 1_048_576
MAX_DELAY_SECONDS = 100 * 365 * 24 * 3600.0

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")

JSON = Any


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What went wrong in one attempt: exception type, message and traceback."""

    type: str
    message: str
    traceback: str = ""

    def to_dict(self) -> dict[str, str]:
        """The JSON form stored with the attempt."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorInfo:
        """Rebuild from the stored JSON form."""
        return cls(str(data["type"]), str(data["message"]), str(data.get("traceback", "")))


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated request to create one job. Build it with :func:`new_job`."""

    task: str
    payload: JSON
    queue: str
    priority: int
    run_at: datetime
    max_attempts: int
    timeout: float | None
    message_id: str | None
    content_type: str
    content_encoding: str
    key: str | None
    tags: tuple[str, ...]
    assignee: str | None
    immediate: bool
    tenant_id: str = DEFAULT_TENANT
    task_version: int | None = None
    """The tenant's stored version of the task whose settings this job took, if any."""
    created_by: str | None = None
    """The email of the user who asked for the job (a schedule's owner for its firings);
    ``None`` for an API key without a user."""

    def initial_state(self, now: datetime) -> JobState:
        """``scheduled`` when it must wait for ``run_at``, else ``available``."""
        return JobState.SCHEDULED if self.run_at > now else JobState.AVAILABLE

    def as_job(self, job_id: int, state: JobState, now: datetime) -> Job:
        """The job this request became once stored with ``job_id``."""
        return Job(
            id=job_id,
            tenant_id=self.tenant_id,
            task=self.task,
            queue=self.queue,
            state=state,
            priority=self.priority,
            run_at=self.run_at,
            payload=self.payload,
            attempt=0,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            message_id=self.message_id,
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            key=self.key,
            tags=self.tags,
            assignee=self.assignee,
            immediate=self.immediate,
            created_at=now,
            updated_at=now,
            task_version=self.task_version,
            created_by=self.created_by,
        )

    def payload_json(self) -> str:
        """The payload as stored."""
        return json.dumps(self.payload, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Job:
    """One execution request of a task, as the store holds it."""

    id: int
    tenant_id: str
    task: str
    queue: str
    state: JobState
    priority: int
    run_at: datetime
    payload: JSON
    attempt: int
    max_attempts: int
    timeout: float | None
    message_id: str | None
    content_type: str
    content_encoding: str
    key: str | None
    tags: tuple[str, ...]
    assignee: str | None
    immediate: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    result: JSON = None
    error: ErrorInfo | None = None
    progress: float | None = None
    progress_message: str | None = None
    task_version: int | None = None
    """The version of the tenant's task settings the job runs with (set at enqueue,
    renewed by a reprocess); ``None`` when the tenant stores none for the task."""
    created_by: str | None = None
    """The email of the user who asked for the job (a schedule's owner for its firings)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job: who ran it, when, and how it ended."""

    job_id: int
    attempt: int
    worker_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: ErrorInfo | None = None
    task_version: int | None = None
    """The version of the task settings that this run ran with."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a job produced, kept with its size and checksum."""

    id: int
    job_id: int
    name: str
    size: int
    sha256: str
    path: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Optional filters for listing jobs; ``None`` means any."""

    state: JobState | None = None
    queue: str | None = None
    task: str | None = None
    key: str | None = None
    tag: str | None = None
    assignee: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    text: str | None = None
    """Case-insensitive substring of the task, key or payload."""
    after_id: int | None = None
    limit: int = 100
    newest_first: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def narrows(self) -> bool:
        """Whether any criterion is set (paging and order aside)."""
        criteria = (self.state, self.queue, self.task, self.key, self.tag, self.assignee)
        moments = (self.created_after, self.created_before, self.text)
        return any(value is not None for value in (*criteria, *moments)) or bool(self.extra)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def check_name(field_name: str, value: object) -> str:
    """A task, queue or tenant name: 1-128 of letters, digits and ``_.:-``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):  # no "name\n"
        raise InvalidInput(
            field_name, "must be 1-128 letters, digits or '_.:-', starting with a letter or digit"
        )
    return value


def check_no_nul(field_name: str, value: str) -> str:
    """Refuse the NUL character: PostgreSQL cannot store it in text or JSON, and both
    stores must accept the same input."""
    if "\x00" in value:
        raise InvalidInput(field_name, "must not contain NUL characters")
    return value


# NUL inside a JSON string, as json.dumps escapes it (an odd run of backslashes
# before "u0000"; an even run is an escaped backslash followed by text "u0000").
_ENCODED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _check_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field_name, f"must be a whole number from {low} to {high}")
    return value


def _check_optional_text(field_name: str, value: object, limit: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInput(field_name, f"must be a non-empty string of at most {limit} characters")
    return check_no_nul(field_name, value)


def _check_payload(payload: object) -> JSON:
    if payload is None:
        return {}
    try:
        encoded = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("payload", f"must be JSON-serialisable ({exc})") from None
    if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidInput("payload", f"is larger than {MAX_PAYLOAD_BYTES} bytes")
    if "u0000" in encoded and _ENCODED_NUL.search(encoded):
        raise InvalidInput("payload", "must not contain NUL characters")
    return payload


def _check_run_at(run_at: object, delay: object, now: datetime) -> datetime:
    if run_at is not None and delay is not None:
        raise InvalidInput("run_at", "give run_at or delay, not both")
    if delay is not None:
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        if not _is_seconds(delay, 0.0, MAX_DELAY_SECONDS):
            raise InvalidInput("delay", f"must be from 0 to {MAX_DELAY_SECONDS:.0f} seconds")
        return now + timedelta(seconds=float(delay))
    if run_at is None:
        return now
    if not isinstance(run_at, datetime) or run_at.tzinfo is None:
        raise InvalidInput("run_at", "must be a date-time with a time zone")
    return run_at.astimezone(UTC)


def _check_tags(tags: object) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise InvalidInput("tags", "must be a list of strings")
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > 64:
            raise InvalidInput(
                "tags", "each tag must be a non-empty string of at most 64 characters"
            )
        check_no_nul("tags", tag)
    return tuple(tags)


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if not _is_seconds(timeout, 0.0, MAX_DELAY_SECONDS) or timeout == 0:
        raise InvalidInput("timeout", "must be a positive number of seconds")
    return float(timeout)


def _check_priority(priority: object) -> int:
    return _check_int("priority", priority, HIGHEST_PRIORITY, LOWEST_PRIORITY)


def _check_max_attempts(max_attempts: object) -> int:
    return _check_int("max_attempts", max_attempts, 1, MAX_ATTEMPTS_LIMIT)


def _check_key(key: object) -> str | None:
    return _check_optional_text("key", key)


def _check_assignee(assignee: object) -> str | None:
    return _check_optional_text("assignee", assignee)


def _check_queue(queue: object) -> str:
    return check_name("queue", queue)


def _check_version(version: object) -> int | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput("task_version", "must be a whole number from 1")
    return version


def _is_seconds(value: object, low: float, high: float) -> TypeGuard[float]:
    """A finite int or float (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and low <= value <= high


def new_job(
    task: str,
    payload: JSON = None,
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = DEFAULT_PRIORITY,
    run_at: datetime | None = None,
    delay: float | timedelta | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    timeout: float | None = None,
    message_id: str | None = None,
    content_type: str = "application/json",
    content_encoding: str = "utf-8",
    key: str | None = None,
    tags: Sequence[str] | None = None,
    assignee: str | None = None,
    immediate: bool = False,
    tenant_id: str = DEFAULT_TENANT,
    now: datetime | None = None,
    task_version: int | None = None,
    created_by: str | None = None,
) -> NewJob:
    """Validate every field and build a :class:`NewJob`; errors name the field."""
    now = now or utcnow()
    return NewJob(
        task=check_name("task", task),
        payload=_check_payload(payload),
        queue=_check_queue(queue),
        priority=_check_priority(priority),
        run_at=_check_run_at(run_at, delay, now),
        max_attempts=_check_max_attempts(max_attempts),
        timeout=_check_timeout(timeout),
        message_id=_check_optional_text("message_id", message_id),
        content_type=_check_optional_text("content_type", content_type) or "application/json",
        content_encoding=_check_optional_text("content_encoding", content_encoding) or "utf-8",
        key=_check_key(key),
        tags=_check_tags(tags),
        assignee=_check_assignee(assignee),
        immediate=bool(immediate),
        tenant_id=check_name("tenant_id", tenant_id),
        task_version=_check_version(task_version),
        created_by=_check_optional_text("created_by", created_by),
    )


# -- editing a job that has not started ---------------------------------------------

_EDIT_CHECKS: dict[str, Callable[[Any], Any]] = {
    "payload": _check_payload,
    "queue": _check_queue,
    "priority": _check_priority,
    "max_attempts": _check_max_attempts,
    "timeout": _check_timeout,
    "key": _check_key,
    "tags": _check_tags,
    "assignee": _check_assignee,
}
EDITABLE_FIELDS: frozenset[str] = frozenset({*_EDIT_CHECKS, "run_at"})
"""The fields an edit may change (``delay`` is another way to give ``run_at``)."""


@dataclass(frozen=True, slots=True)
class JobEdit:
    """A validated change to a job that has not started: the new value of each field it
    sets, ``run_at`` already resolved from ``delay``. Build it with :func:`job_edit`."""

    changes: Mapping[str, Any]

    def apply(self, job: Job) -> Job:
        """``job`` with the new values (its state is :meth:`state_after`'s to decide)."""
        return replace(job, **self.changes)

    def changed_fields(self, job: Job) -> list[str]:
        """The fields whose value this edit changes, sorted."""
        return sorted(name for name, value in self.changes.items() if getattr(job, name) != value)

    def state_after(self, job: Job, now: datetime) -> JobState:
        """The job's state once edited at ``now``, or ``NotEditable`` once it has started:
        a new ``run_at`` makes it ``available`` if that time has come, else ``scheduled``."""
        run_at = self.changes.get("run_at")
        return after_edit(job.state, None if run_at is None else run_at <= now, job.id)

    def event_data(self, job: Job, to_state: JobState) -> dict[str, Any]:
        """The ``job.edited`` event's data: the changed fields and the states."""
        return {"fields": self.changed_fields(job), "from": str(job.state), "to": str(to_state)}


def job_edit(fields: Mapping[str, Any], now: datetime | None = None) -> JobEdit:
    """Validate a change of a job's fields with :func:`new_job`'s checks; errors name the
    field. ``None`` gives what a job created without the field gets (payload ``{}``,
    ``run_at`` now, no key, assignee, timeout or tags); priority, queue and max_attempts
    need a value."""
    unknown = sorted(set(fields) - EDITABLE_FIELDS - {"delay"})
    if unknown:
        editable = ", ".join(sorted(EDITABLE_FIELDS | {"delay"}))
        raise InvalidInput(unknown[0], f"cannot be edited (editable: {editable})")
    changes = {name: check(fields[name]) for name, check in _EDIT_CHECKS.items() if name in fields}
    if "run_at" in fields or "delay" in fields:
        run_at, delay = fields.get("run_at"), fields.get("delay")
        changes["run_at"] = _check_run_at(run_at, delay, now or utcnow())
    return JobEdit(changes)
