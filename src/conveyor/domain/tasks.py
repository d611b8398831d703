"""Task settings: the defaults a task gives the jobs that run it."""

from __future__ import annotations

from dataclasses import dataclass, field

from conveyor.domain.jobs import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    check_name,
)
from conveyor.domain.retry import Backoff


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
