"""Tasks: the defaults a task declares in code, and the versioned settings a tenant
keeps for it.

A tenant may store settings for a task by name. Each change makes a new
:class:`TaskVersion` (1, 2, ...); jobs enqueued afterwards take the current
version's settings as their defaults and record its number, and a reprocess
records the version current at that time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    HIGHEST_PRIORITY,
    LOWEST_PRIORITY,
    MAX_ATTEMPTS_LIMIT,
    MAX_DELAY_SECONDS,
    check_name,
    check_no_nul,
)
from conveyor.domain.retry import Backoff

MAX_DESCRIPTION_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """How jobs of one task run unless the enqueue call says otherwise."""

    name: str
    queue: str = DEFAULT_QUEUE
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None
    immediate: bool = False
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        check_name("task", self.name)
        check_name("queue", self.queue)

    def job_defaults(self) -> dict[str, object]:
        """The enqueue options this task fills in."""
        return {
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "immediate": self.immediate,
        }


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A validated set of settings for one task: what its next version holds.

    Build it with :func:`change_task`.
    """

    name: str
    queue: str = DEFAULT_QUEUE
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float | None = None
    immediate: bool = False
    description: str = ""


TASK_SETTINGS = tuple(f.name for f in fields(TaskChange) if f.name != "name")
"""The settings a change may set: queue, priority, max_attempts, timeout, immediate,
description."""


@dataclass(frozen=True, slots=True)
class TaskVersion:
    """One stored version of a tenant's settings for a task."""

    tenant_id: str
    name: str
    version: int
    queue: str
    priority: int
    max_attempts: int
    timeout: float | None
    immediate: bool
    description: str
    created_at: datetime
    created_by: str
    """Who made the change, as the audit log names it (``user:...`` or ``key:...``)."""

    def job_defaults(self) -> dict[str, object]:
        """The enqueue options this version fills in (over the task's code defaults)."""
        return {
            "queue": self.queue,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "immediate": self.immediate,
        }

    def settings(self) -> TaskChange:
        """This version's settings, as the change that made it."""
        return TaskChange(
            name=self.name,
            queue=self.queue,
            priority=self.priority,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            immediate=self.immediate,
            description=self.description,
        )


def first_settings(name: str, declared: TaskSettings | None = None) -> TaskChange:
    """What a task's first version starts from: its code-declared settings, if any,
    else the built-in job defaults."""
    check_name("task", name)
    if declared is None:
        return TaskChange(name=name)
    return TaskChange(
        name=name,
        queue=declared.queue,
        priority=declared.priority,
        max_attempts=declared.max_attempts,
        timeout=declared.timeout,
        immediate=declared.immediate,
    )


def change_task(base: TaskChange, updates: Mapping[str, Any]) -> TaskChange:
    """``base`` with ``updates`` applied, every setting validated; errors name the field.

    A setting missing from ``updates`` keeps its value in ``base``; ``timeout`` may be
    set to ``None`` (no timeout).
    """
    for key in updates:
        if key not in TASK_SETTINGS:
            raise InvalidInput(key, "is not a task setting")
    merged = replace(base, **updates)
    return TaskChange(
        name=check_name("task", merged.name),
        queue=check_name("queue", merged.queue),
        priority=_check_int("priority", merged.priority, HIGHEST_PRIORITY, LOWEST_PRIORITY),
        max_attempts=_check_int("max_attempts", merged.max_attempts, 1, MAX_ATTEMPTS_LIMIT),
        timeout=_check_timeout(merged.timeout),
        immediate=_check_bool("immediate", merged.immediate),
        description=_check_description(merged.description),
    )


def _check_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field_name, f"must be a whole number from {low} to {high}")
    return value


def _check_timeout(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_DELAY_SECONDS
    ):
        raise InvalidInput("timeout", "must be a positive number of seconds")
    return float(value)


def _check_bool(field_name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field_name, "must be true or false")
    return value


def _check_description(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(
            "description", f"must be a string of at most {MAX_DESCRIPTION_LENGTH} characters"
        )
    return check_no_nul("description", value)
