"""Task use cases: read and change a tenant's versioned task settings, and the
catalog the enqueue path reads the current versions from.

Reading needs ``jobs:read`` (agents, who see only their assigned jobs, see no
settings); changing needs ``admin`` (a tenant's owners, or an admin key). Every
use case acts on the principal's own tenant only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import InvalidInput, NotFound, PermissionDenied
from conveyor.domain.jobs import check_name
from conveyor.domain.tasks import TaskSettings, TaskVersion, change_task, first_settings
from conveyor.store.tasks_protocol import TaskStore

Clock = Callable[[], datetime]
Declared = Callable[[str], TaskSettings | None]
"""The settings a task declares in code (the worker app's registry), by name."""

CACHE_SECONDS = 1.0
MAX_CACHED = 10_000

_Key = tuple[str, str]


def _undeclared(_: str) -> TaskSettings | None:
    return None


def _is_task_name(name: str) -> bool:
    try:
        check_name("task", name)
    except InvalidInput:
        return False
    return True


class TaskCatalog:
    """The current version of each tenant's tasks, as enqueue needs them: cached.

    One catalog serves a whole server. A version (or its absence) is kept for
    ``ttl`` seconds, so a busy enqueue path reads each (tenant, task) once a second
    at most; a change made through this catalog's :class:`TaskService` is seen at
    once, a change made on another node within ``ttl``.
    """

    def __init__(
        self,
        store: TaskStore,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_CACHED,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._cached: dict[_Key, tuple[float, TaskVersion | None]] = {}
        self._changes = 0
        """Counts local changes: a read that overlapped one is not cached."""

    async def current(self, tenant_id: str, name: str) -> TaskVersion | None:
        """The task's current version in the tenant, if it stores any. A name that
        cannot be a task's is neither looked up nor remembered."""
        hit = self._cached.get((tenant_id, name))
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        if not _is_task_name(name):
            return None
        changes = self._changes
        version = await self.store.current_version(tenant_id, name)
        if changes == self._changes:
            self._remember((tenant_id, name), version)
        return version

    async def current_many(self, tenant_id: str, names: Iterable[str]) -> dict[str, TaskVersion]:
        """The current version of each distinct task in ``names`` that has one; each
        name is looked up once, however often it appears."""
        found: dict[str, TaskVersion] = {}
        for name in set(names):
            version = await self.current(tenant_id, name)
            if version is not None:
                found[name] = version
        return found

    def forget(self, tenant_id: str, name: str) -> None:
        """Drop what is known of a task: it just changed."""
        self._changes += 1
        self._cached.pop((tenant_id, name), None)

    def _remember(self, key: _Key, version: TaskVersion | None) -> None:
        now = self._clock()
        if len(self._cached) >= self._max_entries:
            self._cached = {k: hit for k, hit in self._cached.items() if hit[0] > now}
            if len(self._cached) >= self._max_entries:
                self._cached.clear()
        self._cached[key] = (now + self.ttl, version)


class TaskService:
    """One tenant's task settings, as its principal may read and change them."""

    def __init__(
        self,
        catalog: TaskCatalog,
        principal: Principal,
        clock: Clock,
        declared: Declared = _undeclared,
    ) -> None:
        self.catalog = catalog
        self.principal = principal
        self.clock = clock
        self.declared = declared

    @property
    def tenant_id(self) -> str:
        """The tenant whose tasks these are: the principal's."""
        return self.principal.tenant_id

    def _may_read(self) -> None:
        self.principal.require(Scope.JOBS_READ)
        if self.principal.assigned_only:
            raise PermissionDenied("agents see only the jobs assigned to them")

    async def list_tasks(self) -> list[TaskVersion]:
        """The current version of every task the tenant stores settings for, by name."""
        self._may_read()
        return await self.catalog.store.list_tasks(self.tenant_id)

    async def versions(self, name: str) -> list[TaskVersion]:
        """Every version of one task, newest first; ``NotFound`` if there is none."""
        self._may_read()
        found = await self.catalog.store.list_versions(self.tenant_id, name)
        if not found:
            raise NotFound(f"task {name!r} has no stored settings")
        return found

    async def change(self, name: str, updates: Mapping[str, Any]) -> TaskVersion:
        """Store new settings for a task as its next version and return it.

        Settings missing from ``updates`` keep the current version's values (for the
        first version: the task's code-declared settings, else the built-in job
        defaults). A change that changes nothing makes no version: the current one
        is returned.
        """
        self.principal.require(Scope.ADMIN)
        current = await self.catalog.store.current_version(self.tenant_id, name)
        base = current.settings() if current else first_settings(name, self.declared(name))
        change = change_task(base, updates)
        if current is not None and change == base:
            return current
        version = await self.catalog.store.add_version(
            self.tenant_id, change, self.principal.actor, self.clock()
        )
        self.catalog.forget(self.tenant_id, name)
        return version
