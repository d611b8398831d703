"""The ``Conveyor`` application object: declare tasks, enqueue jobs, run workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from conveyor.builtins.catalog import shell_tasks_from_env
from conveyor.builtins.registration import BuiltinTasks
from conveyor.domain.jobs import DEFAULT_TENANT, Job
from conveyor.domain.retry import Backoff
from conveyor.domain.schedules import ScheduleSpec
from conveyor.domain.tasks import TaskSettings
from conveyor.loops.scheduler import Scheduler
from conveyor.net.policy import ALLOW_ENV
from conveyor.runtime.observer import WorkerObserver
from conveyor.runtime.periodic import check_unique, declare, periodic_timing, sync_declared
from conveyor.runtime.portal import Portal
from conveyor.runtime.registry import RegisteredTask, TaskRegistry
from conveyor.runtime.worker import Worker, WorkerSettings
from conveyor.services.jobs import JobService
from conveyor.services.tasks import TaskCatalog
from conveyor.store import DEFAULT_DATABASE_URL, schedules_for, store_from_url, tasks_for
from conveyor.store.leadership import leadership_for
from conveyor.store.protocol import Store

F = TypeVar("F", bound=Callable[..., Any])
EnqueueRequest = tuple[str, Any, Mapping[str, Any] | None]


class AsyncConveyor:
    """The async face of a :class:`Conveyor` app (``app.aio``): use it inside async code."""

    def __init__(self, app: Conveyor) -> None:
        self._app = app
        self._store: Store | None = None
        self._shared = False
        self._lock = asyncio.Lock()
        self._catalog: TaskCatalog | None = None
        self._catalog_store: Store | None = None

    async def store(self) -> Store:
        """The app's store, opened (and its schema checked) on first use."""
        if self._store is None:
            async with self._lock:
                if self._store is None:
                    store = store_from_url(
                        self._app.database_url, sqlite_synchronous=self._app.sqlite_synchronous
                    )
                    await store.open()
                    try:
                        await store.check_schema()
                    except BaseException:
                        await store.close()
                        raise
                    self._store = store
        return self._store

    def use_store(self, store: Store) -> None:
        """Share an open store (the server's) instead of opening one; it is not closed here."""
        self._store = store
        self._shared = True

    async def jobs(self) -> JobService:
        """The job use cases for this app's tenant (stored task versions apply)."""
        store = await self.store()
        if self._catalog is None or self._catalog_store is not store:
            self._catalog, self._catalog_store = TaskCatalog(tasks_for(store)), store
        return JobService(
            store,
            self._app.tenant,
            self._app.registry.settings,
            catalog=self._catalog,
            shell_tasks=self._app.shell_tasks,
        )

    async def enqueue(self, task: str, payload: Any = None, **options: Any) -> Job:
        """Create one job; options as in :func:`conveyor.domain.jobs.new_job`."""
        return await (await self.jobs()).enqueue(task, payload, options)

    async def enqueue_many(self, requests: Iterable[EnqueueRequest]) -> list[Job]:
        """Create many jobs in one transaction: ``[(task, payload, options), ...]``."""
        return await (await self.jobs()).enqueue_many(list(requests))

    async def get_job(self, job_id: int) -> Job:
        """One job by id."""
        return await (await self.jobs()).get(job_id)

    async def run_worker(
        self,
        settings: WorkerSettings,
        stop: asyncio.Event,
        observer: WorkerObserver | None = None,
        scheduler: bool = False,
    ) -> Worker:
        """Run a worker for the registered tasks until ``stop`` is set. The schedules
        declared with ``@app.periodic`` are synced first; with ``scheduler``, this
        process also fires due schedules whenever it leads (see ``conveyor worker``)."""
        self._app.portal.adopt(asyncio.get_running_loop())
        store = await self.store()
        if self._app.periodics:
            await sync_declared(store, self._app.tenant, self._app.periodics, store.clock)
        worker = Worker(store, self._app.registry, settings, observer)
        firing = self._scheduler(store) if scheduler else None
        if firing is not None:
            firing.start()
        try:
            await worker.run(stop)
        finally:
            if firing is not None:
                await firing.stop()
        return worker

    def _scheduler(self, store: Store) -> Scheduler:
        def jobs_for(tenant_id: str, created_by: str | None = None) -> JobService:
            return JobService(
                store,
                tenant_id,
                self._app.registry.settings,
                catalog=self._catalog,
                shell_tasks=self._app.shell_tasks,
                created_by=created_by,
            )

        return Scheduler(
            schedules_for(store), jobs_for, leadership_for(self._app.database_url), store.clock
        )

    async def close(self) -> None:
        """Close the store."""
        if self._store is not None and not self._shared:
            await self._store.close()
        self._store = None


class Conveyor:
    """A Conveyor application: tasks declared with ``@app.task``, jobs with ``app.enqueue``.

    ``database_url`` is ``sqlite:///path.db`` or ``postgresql://...``; by default
    ``CONVEYOR_DATABASE_URL``, else ``sqlite:///conveyor.db``.

    The built-in tasks (docs/builtin-tasks.md) come with it: ``http`` unless
    ``builtins=False``, ``shell`` when ``shell_tasks`` (default:
    ``CONVEYOR_SHELL_TASKS``). ``http_allow`` (default: ``CONVEYOR_HTTP_ALLOW``) lists
    the private networks and host names the ``http`` task may call.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        data_dir: str | Path | None = None,
        sqlite_synchronous: str | None = None,
        builtins: bool = True,
        shell_tasks: bool | None = None,
        http_allow: Iterable[str] | None = None,
    ) -> None:
        self.database_url = database_url or os.environ.get(
            "CONVEYOR_DATABASE_URL", DEFAULT_DATABASE_URL
        )
        self.tenant = tenant
        self.data_dir = Path(data_dir or os.environ.get("CONVEYOR_DATA_DIR", "conveyor-data"))
        self.sqlite_synchronous = sqlite_synchronous or os.environ.get(
            "CONVEYOR_SQLITE_SYNCHRONOUS", "FULL"
        )
        self.registry = TaskRegistry()
        self.shell_tasks = shell_tasks_from_env() if shell_tasks is None else shell_tasks
        self.builtin_tasks: BuiltinTasks | None = None
        if builtins:
            allow = os.environ.get(ALLOW_ENV, "") if http_allow is None else http_allow
            self.builtin_tasks = BuiltinTasks(
                self.registry, http_allow=allow, shell_tasks=self.shell_tasks
            )
        self.periodics: list[ScheduleSpec] = []
        """The schedules declared with :meth:`periodic`."""
        self.portal = Portal()
        self.aio = AsyncConveyor(self)

    def task(
        self,
        name: str | None = None,
        *,
        queue: str = "default",
        priority: int = 5,
        max_attempts: int = 3,
        timeout: float | None = None,
        immediate: bool = False,
        backoff: Backoff | None = None,
    ) -> Callable[[F], F]:
        """Declare a task: ``@app.task(name="emails.send", queue="mail", max_attempts=5)``."""

        def register(handler: F) -> F:
            settings = TaskSettings(
                name=name or f"{handler.__module__}.{handler.__qualname__}",
                queue=queue,
                priority=priority,
                max_attempts=max_attempts,
                timeout=timeout,
                immediate=immediate,
                backoff=backoff or Backoff(),
            )
            self.registry.add(settings, handler)
            return handler

        return register

    def periodic(
        self,
        *,
        cron: str | None = None,
        every: float | str | None = None,
        tz: str = "UTC",
        name: str | None = None,
        payload: Any = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Run a task on a schedule, declared in code; put it above ``@app.task``::

            @app.periodic(cron="0 19 * * *", tz="America/Sao_Paulo")
            @app.task(name="reports.daily")
            def daily_report() -> None: ...

        ``cron`` (5 fields, or 6 with seconds first, or ``@daily``...) or ``every``
        (seconds, or ``"15m"``); ``name`` defaults to the task's; other options as for
        a schedule (``queue``, ``priority``, ``misfire``, ``overlap``, ``jitter``...).
        Synced into the database when a worker or a server with this app starts.
        """
        timing = periodic_timing(cron, every, tz)

        def register(handler: F) -> F:
            spec = declare(self.registry, handler, timing, name=name, payload=payload, **options)
            check_unique(self.periodics, spec)
            self.periodics.append(spec)
            return handler

        return register

    def use_server_settings(self, *, http_allow: Iterable[str], shell_tasks: bool) -> None:
        """Apply ``serve``'s settings to the built-in tasks (unless opted out): the
        ``http`` task may also call ``http_allow``, and ``shell`` runs if enabled."""
        if self.builtin_tasks is None:
            return
        self.builtin_tasks.allow(http_allow)
        if shell_tasks:
            self.shell_tasks = True
            self.builtin_tasks.enable_shell()

    def get_task(self, name: str) -> RegisteredTask | None:
        """A registered task by name."""
        return self.registry.get(name)

    def enqueue(self, task: str, payload: Any = None, **options: Any) -> Job:
        """Create one job and return it once it is committed."""
        return self.portal.call(self.aio.enqueue(task, payload, **options))

    def enqueue_many(self, requests: Iterable[EnqueueRequest]) -> list[Job]:
        """Create many jobs in one transaction: ``[(task, payload, options), ...]``."""
        return self.portal.call(self.aio.enqueue_many(requests))

    def get_job(self, job_id: int) -> Job:
        """One job by id."""
        return self.portal.call(self.aio.get_job(job_id))

    def worker_settings(self, **overrides: Any) -> WorkerSettings:
        """Worker settings for this app (artifacts under its data directory)."""
        defaults: dict[str, Any] = {
            "tenant_id": self.tenant,
            "artifact_dir": self.data_dir / "artifacts",
        }
        return WorkerSettings(**{**defaults, **overrides})

    def close(self) -> None:
        """Release the store and the background loop of sync calls."""
        if self.portal.loop is not None and self.aio._store is not None:
            with contextlib.suppress(RuntimeError):
                self.portal.call(self.aio.close())
        self.portal.stop()
