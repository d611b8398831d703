"""The TaskStore, once for both databases.

Not a hot path: the portable queries of ``tasks.sql`` run through the store's
``run_sql`` primitive, and rows become :class:`TaskVersion` records here. The
enqueue path reads current versions through a short-lived cache
(:class:`conveyor.services.tasks.TaskCatalog`), not straight from here.
"""

from __future__ import annotations

from datetime import datetime

from conveyor.domain.errors import Conflict, NotFound
from conveyor.domain.tasks import TaskChange, TaskVersion
from conveyor.store.portable import PortableStore, Row

_ADD_TRIES = 2
"""A concurrent change can take the next number once; a second loss is reported."""


class SqlTaskStore(PortableStore):
    """The :class:`~conveyor.store.tasks_protocol.TaskStore` on a store's database."""

    sql_file = "tasks.sql"

    def _version(self, row: Row) -> TaskVersion:
        return TaskVersion(
            tenant_id=row["tenant_id"],
            name=row["name"],
            version=int(row["version"]),
            queue=row["queue"],
            priority=int(row["priority"]),
            max_attempts=int(row["max_attempts"]),
            timeout=None if row["timeout"] is None else float(row["timeout"]),
            immediate=bool(row["immediate"]),
            description=row["description"],
            created_at=self.store.read_time(row["created_at"]),
            created_by=row["created_by"],
        )

    async def add_version(
        self, tenant_id: str, change: TaskChange, created_by: str, now: datetime
    ) -> TaskVersion:
        """Store ``change`` as the task's next version, numbered in the insert."""
        params = {
            "tenant_id": tenant_id,
            "name": change.name,
            "queue": change.queue,
            "priority": change.priority,
            "max_attempts": change.max_attempts,
            "timeout": change.timeout,
            "immediate": change.immediate,
            "description": change.description,
            "created_at": now,
            "created_by": created_by,
        }
        for _ in range(_ADD_TRIES):
            try:
                [row] = await self._rows("insert_version", write=True, **params)
            except Conflict:
                continue
            except NotFound:
                raise NotFound(f"tenant {tenant_id!r} does not exist") from None
            return self._version(row)
        raise Conflict(f"task {change.name!r} is being changed by someone else; try again")

    async def current_version(self, tenant_id: str, name: str) -> TaskVersion | None:
        """The task's newest version, if the tenant stores any."""
        found = await self._rows("current_version", tenant_id=tenant_id, name=name)
        return self._version(found[0]) if found else None

    async def list_versions(self, tenant_id: str, name: str) -> list[TaskVersion]:
        """Every version of the task, newest first."""
        found = await self._rows("list_versions", tenant_id=tenant_id, name=name)
        return [self._version(row) for row in found]

    async def list_tasks(self, tenant_id: str) -> list[TaskVersion]:
        """The newest version of each task the tenant stores settings for, by name."""
        found = await self._rows("list_tasks", tenant_id=tenant_id)
        return [self._version(row) for row in found]
