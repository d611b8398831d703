"""Job use cases: enqueue, read, edit, cancel, retry, and queue control."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conveyor.builtins.catalog import builtin_settings, check_shell_job, shell_tasks_from_env
from conveyor.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from conveyor.domain.events import Event, as_agent_sees_it
from conveyor.domain.jobs import Artifact, Attempt, Job, JobFilter, NewJob, job_edit, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.tasks import TaskSettings, TaskVersion
from conveyor.services.tasks import TaskCatalog
from conveyor.store.protocol import QueueInfo, Store, WorkerInfo

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


def owner_email(owner: str) -> str | None:
    """The email in a schedule's ``owner`` (``user:<email>``); ``None`` for an API key
    (``key:<id>``): a schedule's jobs count as created by its owner."""
    kind, _, name = owner.partition(":")
    return name if kind == "user" and "@" in name else None


def _version_of(versions: Mapping[str, TaskVersion], task: object) -> TaskVersion | None:
    return versions.get(task) if isinstance(task, str) else None


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk action did: how many matched, which changed, which were skipped."""

    matched: int
    changed: list[int]
    skipped: list[int]


@dataclass(frozen=True, slots=True)
class JobDetail:
    """A job with its finished attempts and its event history."""

    job: Job
    attempts: list[Attempt]
    events: list[Event]
    artifacts: list[Artifact]


class JobService:
    """Everything a caller can do with one tenant's jobs and queues."""

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        tasks: TaskLookup = builtin_settings,
        assigned_to: str | None = None,
        catalog: TaskCatalog | None = None,
        shell_tasks: bool | None = None,
        may_run_shell: bool = True,
        created_by: str | None = None,
    ) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.tasks = tasks
        """Code-declared task settings by name (default: the built-in tasks')."""
        self.assigned_to = assigned_to
        """Set for an ``agent``: only jobs assigned to it exist for this service."""
        self.catalog = catalog
        """The tenant's stored task versions; ``None``: only code-declared defaults."""
        self.shell_tasks = shell_tasks_from_env() if shell_tasks is None else shell_tasks
        """Whether ``shell`` jobs may be created at all (the operator's switch)."""
        self.may_run_shell = may_run_shell
        """Whether this caller may create ``shell`` jobs (the server sets it per principal)."""
        self.created_by = created_by
        """The email the jobs this service creates record as their creator's."""

    def build(
        self,
        task: str,
        payload: Any = None,
        options: Mapping[str, Any] | None = None,
        version: TaskVersion | None = None,
    ) -> NewJob:
        """Validate one enqueue request, filling in the task's defaults: the tenant's
        stored ``version`` of the task over its code-declared settings; options given
        win over both. The job records the version."""
        check_shell_job(task, enabled=self.shell_tasks, allowed=self.may_run_shell)
        options = dict(options or {})
        unknown = set(options) - _ENQUEUE_OPTIONS
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "is not an enqueue option")
        settings = self.tasks(task) if isinstance(task, str) else None
        merged = {
            **(settings.job_defaults() if settings else {}),
            **(version.job_defaults() if version else {}),
            **options,
        }
        merged = {k: v for k, v in merged.items() if v is not None or k in ("timeout",)}
        return new_job(
            task,
            payload,
            tenant_id=self.tenant_id,
            now=self.store.clock(),
            task_version=version.version if version else None,
            created_by=self.created_by,
            **merged,
        )

    async def _versions(self, tasks: Iterable[object]) -> dict[str, TaskVersion]:
        """The current stored version of each distinct task named, looked up once each."""
        if self.catalog is None:
            return {}
        names = {task for task in tasks if isinstance(task, str)}
        return await self.catalog.current_many(self.tenant_id, names)

    async def enqueue(
        self, task: str, payload: Any = None, options: Mapping[str, Any] | None = None
    ) -> Job:
        """Create one job (or return the first one with the same ``message_id``)."""
        version = None
        if self.catalog is not None and isinstance(task, str):
            version = await self.catalog.current(self.tenant_id, task)
        [job] = await self.store.enqueue([self.build(task, payload, options, version)])
        return job

    async def enqueue_many(
        self, requests: Sequence[tuple[str, Any, Mapping[str, Any] | None]]
    ) -> list[Job]:
        """Create many jobs in one transaction; any invalid request rejects them all."""
        versions = await self._versions(task for task, _, _ in requests)
        built = []
        for index, (task, payload, options) in enumerate(requests):
            try:
                built.append(self.build(task, payload, options, _version_of(versions, task)))
            except InvalidInput as exc:
                raise InvalidInput(f"jobs[{index}].{exc.field}", exc.problem) from None
        return await self.store.enqueue(built)

    async def get(self, job_id: int) -> Job:
        """One job of this tenant (and, for an agent, assigned to it)."""
        job = await self.store.get_job(self.tenant_id, job_id)
        if self.assigned_to is not None and job.assignee != self.assigned_to:
            raise NotFound(f"job {job_id} does not exist")
        return job

    async def detail(self, job_id: int) -> JobDetail:
        """A job with its attempts, events and artifacts."""
        job = await self.get(job_id)
        attempts = await self.store.list_attempts(self.tenant_id, job_id)
        artifacts = await self.store.list_artifacts(self.tenant_id, job_id)
        events = await self.job_events(job_id)
        return JobDetail(job, attempts, events, artifacts)

    async def job_events(self, job_id: int, limit: int = 1000) -> list[Event]:
        """Every event of one job, oldest first."""
        await self.get(job_id)
        return [
            self.shown(e) for e in await self.store.list_job_events(self.tenant_id, job_id, limit)
        ]

    def shown(self, event: Event) -> Event:
        """``event`` as this principal may see it: an agent sees only the job's own data,
        never who acted."""
        return event if self.assigned_to is None else as_agent_sees_it(event)

    async def list_jobs(self, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters`` (an agent's list holds only its own)."""
        if self.assigned_to is not None:
            filters = replace(filters, assignee=self.assigned_to)
        return await self.store.list_jobs(self.tenant_id, filters)

    async def cancel(self, job_id: int, reason: str = "cancelled") -> Job:
        """Cancel a job that has not finished."""
        await self.get(job_id)
        return await self.store.cancel_job(self.tenant_id, job_id, reason)

    async def edit(self, job_id: int, fields: Mapping[str, Any]) -> Job:
        """Change the given fields of a job that has not started (scheduled or available),
        validated as on enqueue; ``NotEditable`` once it has. An agent may not hand its
        job to someone else, nor may a caller who may not create ``shell`` jobs change one."""
        job = await self.get(job_id)
        check_shell_job(job.task, enabled=self.shell_tasks, allowed=self.may_run_shell)
        edit = job_edit(fields, now=self.store.clock())
        assignee = edit.changes.get("assignee", self.assigned_to)
        if self.assigned_to is not None and assignee != self.assigned_to:
            raise PermissionDenied("an agent cannot assign its jobs to someone else")
        return await self.store.edit_job(self.tenant_id, job_id, edit)

    async def retry(self, job_id: int) -> Job:
        """Run a finished job again with its task's current version; its history is kept.
        Running a ``shell`` job again takes the same right as creating one."""
        job = await self.get(job_id)
        check_shell_job(job.task, enabled=self.shell_tasks, allowed=self.may_run_shell)
        version = await self.catalog.current(self.tenant_id, job.task) if self.catalog else None
        return await self.store.retry_job(
            self.tenant_id, job_id, version.version if version else None
        )

    async def bulk(self, action: str, filters: JobFilter, limit: int) -> BulkResult:
        """Cancel or retry every job matching ``filters`` (up to ``limit``; at least one
        filter); jobs in a state that forbids the action are skipped, not errors."""
        act = {"cancel": self.cancel, "retry": self.retry}.get(action)
        if act is None:
            raise InvalidInput("action", "must be cancel or retry")
        if not filters.narrows:
            raise InvalidInput("filters", "name at least one: a bulk action never means every job")
        matched = await self._collect(filters, limit)
        result = BulkResult(len(matched), [], [])
        for job in matched:
            try:
                await act(job.id)
            except (Conflict, PermissionDenied, InvalidInput):
                result.skipped.append(job.id)
            else:
                result.changed.append(job.id)
        return result

    async def _collect(self, filters: JobFilter, limit: int) -> list[Job]:
        found: list[Job] = []
        cursor = None
        while len(found) < limit:
            page_filter = replace(filters, after_id=cursor, limit=min(1000, limit - len(found)))
            page = await self.list_jobs(page_filter)
            found.extend(page)
            if len(page) < page_filter.limit:
                break
            cursor = page[-1].id
        return found

    async def artifacts(self, job_id: int) -> list[Artifact]:
        """The files a job produced."""
        await self.get(job_id)
        return await self.store.list_artifacts(self.tenant_id, job_id)

    async def artifact_file(self, job_id: int, artifact_id: int) -> Artifact:
        """One of a job's files, to download: ``NotFound`` if it is not the job's or its
        file is gone from the data directory."""
        for artifact in await self.artifacts(job_id):
            if artifact.id == artifact_id:
                if not await asyncio.to_thread(Path(artifact.path).is_file):
                    raise NotFound(f"the file of artifact {artifact_id} is gone")
                return artifact
        raise NotFound(f"artifact {artifact_id} does not exist")

    async def stats(self) -> dict[tuple[str, JobState], int]:
        """Job counts by (queue, state)."""
        return await self.store.count_jobs(self.tenant_id)

    async def queues(self) -> list[QueueInfo]:
        """Queues with their settings and counts."""
        return await self.store.list_queues(self.tenant_id)

    async def workers(self) -> list[WorkerInfo]:
        """This tenant's worker processes, with their last heartbeat."""
        return await self.store.list_workers(self.tenant_id)

    async def pause_queue(self, name: str, paused: bool = True) -> QueueInfo:
        """Stop (or restart) claims from a queue."""
        return await self.store.pause_queue(self.tenant_id, name, paused)

    async def limit_queue(self, name: str, concurrency: int | None) -> QueueInfo:
        """Cap a queue's running jobs across all workers."""
        return await self.store.limit_queue(self.tenant_id, name, concurrency)

    async def events(self, after_id: int = 0, limit: int = 100) -> list[Event]:
        """This tenant's events after a cursor (an agent's: of its jobs only)."""
        return (await self.events_page(after_id, limit))[0]

    async def events_page(self, after_id: int = 0, limit: int = 100) -> tuple[list[Event], int]:
        """Events after a cursor and the cursor of the next page (which moves past
        events an agent may not see, so its polling never stalls)."""
        events = await self.store.list_events(self.tenant_id, after_id, limit)
        cursor = events[-1].id if events else after_id
        if self.assigned_to is None:
            return events, cursor
        visible: dict[int, bool] = {}
        for event in events:
            if event.job_id is not None and event.job_id not in visible:
                visible[event.job_id] = await self._visible(event.job_id)
        shown = [self.shown(e) for e in events if e.job_id is not None and visible[e.job_id]]
        return shown, cursor

    async def _visible(self, job_id: int) -> bool:
        try:
            await self.get(job_id)
        except NotFound:
            return False
        return True
