"""Conveyor: durable jobs, schedules and notifications on SQLite or PostgreSQL."""

from importlib.metadata import PackageNotFoundError, version

from conveyor.app import AsyncConveyor, Conveyor
from conveyor.domain.errors import (
    Conflict,
    ConveyorError,
    IllegalTransition,
    InvalidInput,
    NotFound,
    SchemaOutdated,
)
from conveyor.domain.jobs import Job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Discard, Retry
from conveyor.domain.retry import Backoff
from conveyor.runtime.context import JobContext
from conveyor.runtime.worker import WorkerSettings

try:
    __version__ = version("conveyor")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsyncConveyor",
    "Backoff",
    "Conflict",
    "Conveyor",
    "ConveyorError",
    "Discard",
    "IllegalTransition",
    "InvalidInput",
    "Job",
    "JobContext",
    "JobState",
    "NotFound",
    "Retry",
    "SchemaOutdated",
    "WorkerSettings",
    "__version__",
]
