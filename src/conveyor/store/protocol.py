"""The Store protocol: everything Conveyor keeps, behind one interface.

Two implementations, :mod:`conveyor.store.sqlite` and :mod:`conveyor.store.postgres`,
are held to it by one contract test suite (``tests/contract``). Every write that
changes a job's state is a compare-and-set whose guard comes from
:mod:`conveyor.domain.lifecycle`, and appends its event row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from conveyor.domain.events import Event
from conveyor.domain.jobs import Artifact, Attempt, Job, JobEdit, JobFilter, NewJob
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish

Clock = Callable[[], datetime]
SqlSteps = Sequence[tuple[str, Mapping[str, Any]]]
"""Statements in the store's own dialect, each with its named parameters."""


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue's settings and how many jobs it holds by state."""

    name: str
    paused: bool
    concurrency: int | None
    counts: dict[JobState, int]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process as it last reported itself."""

    id: str
    tenant_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: datetime
    last_seen_at: datetime


class Store(Protocol):
    """Durable storage for jobs, queues, events, attempts and artifacts."""

    dialect: str
    clock: Clock

    async def open(self) -> None:
        """Connect; safe to call once before any other method."""

    async def close(self) -> None:
        """Release connections."""

    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""

    async def schema_version(self) -> int:
        """The highest migration applied (0 on an empty database)."""

    async def check_schema(self) -> None:
        """Raise ``SchemaOutdated`` unless every migration is applied."""

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert jobs in one transaction; a known ``message_id`` returns the first job."""

    async def get_job(self, tenant_id: str, job_id: int) -> Job:
        """One job, or ``NotFound``."""

    async def list_jobs(self, tenant_id: str, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters``, newest first by default."""

    async def list_job_events(self, tenant_id: str, job_id: int, limit: int = 1000) -> list[Event]:
        """One job's events, oldest first."""

    async def list_attempts(self, tenant_id: str, job_id: int) -> list[Attempt]:
        """A job's finished attempts, oldest first."""

    async def claim(
        self,
        tenant_id: str,
        queue: str,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        urgent_only: bool = False,
    ) -> list[Job]:
        """Move up to ``limit`` available jobs of a queue to running, in claim order."""

    async def heartbeat(
        self, worker_id: str, held: Sequence[tuple[int, int]], lease_seconds: float
    ) -> set[int]:
        """Extend the leases of (job id, attempt) pairs; return the ids still held."""

    async def finish(self, finishes: Sequence[Finish]) -> list[bool]:
        """End attempts; an item whose attempt lost its lease is refused (``False``)."""

    async def rescue_expired(self) -> list[int]:
        """Return jobs whose lease expired to available (or discarded); their ids."""

    async def promote_due(self, limit: int = 1000) -> int:
        """Make scheduled and retryable jobs whose time has come available."""

    async def next_due_at(self) -> datetime | None:
        """When the earliest waiting job becomes due, if any."""

    async def cancel_job(self, tenant_id: str, job_id: int, reason: str) -> Job:
        """Cancel a job that has not finished, or raise ``IllegalTransition``."""

    async def retry_job(self, tenant_id: str, job_id: int, task_version: int | None = None) -> Job:
        """Make a finished job available again, keeping its history; with
        ``task_version``, the job records that version of its task's settings (a
        reprocess runs the current one). ``None`` keeps the job's version."""

    async def edit_job(self, tenant_id: str, job_id: int, edit: JobEdit) -> Job:
        """Apply ``edit`` to a job that has not started, with its ``job.edited`` event;
        ``NotEditable`` once the job has started or finished (nothing is written), and
        nothing is written either when no value changes. A compare-and-set on the
        state that :func:`~conveyor.domain.lifecycle.after_edit` checked; it wakes the
        workers (a new ``run_at`` may be due sooner, or now)."""

    async def record_progress(
        self, job_id: int, attempt: int, fraction: float, message: str | None
    ) -> bool:
        """Store a running attempt's progress; ``False`` if it lost its lease."""

    async def add_note(self, job_id: int, attempt: int, text: str) -> bool:
        """Append a note to a running attempt; ``False`` if it lost its lease."""

    async def add_artifact(
        self, job_id: int, attempt: int, name: str, size: int, sha256: str, path: str
    ) -> Artifact:
        """Record a file a running attempt produced."""

    async def list_artifacts(self, tenant_id: str, job_id: int) -> list[Artifact]:
        """A job's files, oldest first."""

    async def pause_queue(self, tenant_id: str, name: str, paused: bool) -> QueueInfo:
        """Pause (no new claims) or resume a queue."""

    async def limit_queue(self, tenant_id: str, name: str, concurrency: int | None) -> QueueInfo:
        """Cap how many of a queue's jobs run at once across all workers (``None``: no cap)."""

    async def list_queues(self, tenant_id: str) -> list[QueueInfo]:
        """Every queue that has settings or jobs, with counts by state."""

    async def count_jobs(self, tenant_id: str) -> dict[tuple[str, JobState], int]:
        """Job counts by (queue, state)."""

    async def list_events(
        self, tenant_id: str | None, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Committed events after a cursor, in order; never skips a late commit."""

    async def event_horizon(self, after_id: int = 0) -> int:
        """A cursor for "from now on", never behind ``after_id``: ``list_events(None,
        cursor)`` returns no event committed before it but those of transactions not
        older than the oldest still open (PostgreSQL); ``after_id`` when no event is
        after that cursor."""

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Record (or refresh) a worker's presence."""

    async def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped."""

    async def list_workers(self, tenant_id: str) -> list[WorkerInfo]:
        """Workers seen recently."""

    async def wait_for_work(self, max_wait: float) -> None:
        """Return when new work may be available, or after ``max_wait`` seconds."""

    def read_time(self, value: Any) -> datetime:
        """A time column's value, as the database returned it, as a UTC datetime."""

    async def run_sql(self, steps: SqlSteps, write: bool = True) -> list[list[dict[str, Any]]]:
        """Run statements in one write transaction, in order; each one's rows as dicts.
        ``write=False``: read-only statements, run without taking the write lock.

        For queries off the hot path (:mod:`conveyor.store.accounts`). Datetime
        parameters are stored the way the store stores times; a unique violation
        raises ``Conflict``, a missing referenced row ``NotFound``.
        """
