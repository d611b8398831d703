"""Job use cases: enqueue, read, cancel, retry, and queue control."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import Event
from conveyor.domain.jobs import Artifact, Attempt, Job, JobFilter, NewJob, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.tasks import TaskSettings
from conveyor.store.protocol import QueueInfo, Store

TaskLookup = Callable[[str], TaskSettings | None]

_ENQUEUE_OPTIONS = frozenset(
    {
        "queue",
        "priority",
        "run_at",
        "delay",
        "max_attempts",
        "timeout",
        "message_id",
        "content_type",
        "content_encoding",
        "key",
        "tags",
        "assignee",
        "immediate",
    }
)


def _no_tasks(_: str) -> TaskSettings | None:
    return None


@dataclass(frozen=True, slots=True)
class JobDetail:
    """A job with its finished attempts and its event history."""

    job: Job
    attempts: list[Attempt]
    events: list[Event]
    artifacts: list[Artifact]


class JobService:
    """Everything a caller can do with one tenant's jobs and queues."""

    def __init__(self, store: Store, tenant_id: str, tasks: TaskLookup = _no_tasks) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.tasks = tasks

    def build(
        self, task: str, payload: Any = None, options: Mapping[str, Any] | None = None
    ) -> NewJob:
        """Validate one enqueue request, filling in the task's defaults."""
        options = dict(options or {})
        unknown = set(options) - _ENQUEUE_OPTIONS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "is not an enqueue option")
        settings = self.tasks(task) if isinstance(task, str) else None
        merged = {**(settings.job_defaults() if settings else {}), **options}
        merged = {k: v for k, v in merged.items() if v is not None or k in ("timeout",)}
        return new_job(task, payload, tenant_id=self.tenant_id, now=self.store.clock(), **merged)

    async def enqueue(
        self, task: str, payload: Any = None, options: Mapping[str, Any] | None = None
    ) -> Job:
        """Create one job (or return the first one with the same ``message_id``)."""
        [job] = await self.store.enqueue([self.build(task, payload, options)])
        return job

    async def enqueue_many(
        self, requests: Sequence[tuple[str, Any, Mapping[str, Any] | None]]
    ) -> list[Job]:
        """Create many jobs in one transaction; any invalid request rejects them all."""
        built = []
        for index, (task, payload, options) in enumerate(requests):
            try:
                built.append(self.build(task, payload, options))
            except InvalidInput as exc:
                raise InvalidInput(f"jobs[{index}].{exc.field}", exc.problem) from None
        return await self.store.enqueue(built)

    async def get(self, job_id: int) -> Job:
        """One job of this tenant."""
        return await self.store.get_job(self.tenant_id, job_id)

    async def detail(self, job_id: int) -> JobDetail:
        """A job with its attempts, events and artifacts."""
        job = await self.get(job_id)
        attempts = await self.store.list_attempts(self.tenant_id, job_id)
        artifacts = await self.store.list_artifacts(self.tenant_id, job_id)
        events = await self.job_events(job_id)
        return JobDetail(job, attempts, events, artifacts)

    async def job_events(self, job_id: int, limit: int = 1000) -> list[Event]:
        """Every event of one job, oldest first."""
        return await self.store.list_job_events(self.tenant_id, job_id, limit)

    async def list_jobs(self, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters``."""
        return await self.store.list_jobs(self.tenant_id, filters)

    async def cancel(self, job_id: int, reason: str = "cancelled") -> Job:
        """Cancel a job that has not finished."""
        return await self.store.cancel_job(self.tenant_id, job_id, reason)

    async def retry(self, job_id: int) -> Job:
        """Run a finished job again; its history is kept."""
        return await self.store.retry_job(self.tenant_id, job_id)

    async def artifacts(self, job_id: int) -> list[Artifact]:
        """The files a job produced."""
        await self.get(job_id)
        return await self.store.list_artifacts(self.tenant_id, job_id)

    async def stats(self) -> dict[tuple[str, JobState], int]:
        """Job counts by (queue, state)."""
        return await self.store.count_jobs(self.tenant_id)

    async def queues(self) -> list[QueueInfo]:
        """Queues with their settings and counts."""
        return await self.store.list_queues(self.tenant_id)

    async def pause_queue(self, name: str, paused: bool = True) -> QueueInfo:
        """Stop (or restart) claims from a queue."""
        return await self.store.pause_queue(self.tenant_id, name, paused)

    async def limit_queue(self, name: str, concurrency: int | None) -> QueueInfo:
        """Cap a queue's running jobs across all workers."""
        return await self.store.limit_queue(self.tenant_id, name, concurrency)

    async def events(self, after_id: int = 0, limit: int = 100) -> list[Event]:
        """This tenant's events after a cursor."""
        return await self.store.list_events(self.tenant_id, after_id, limit)
