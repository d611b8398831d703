"""The TaskStore protocol: each tenant's versioned settings for its tasks.

Not a hot path: one portable implementation serves both databases
(:mod:`conveyor.store.tasks`), held to this protocol by the contract suite. Every
method names a tenant and touches only that tenant's rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from conveyor.domain.tasks import TaskChange, TaskVersion


class TaskStore(Protocol):
    """Durable storage for task versions."""

    async def add_version(
        self, tenant_id: str, change: TaskChange, created_by: str, now: datetime
    ) -> TaskVersion:
        """Store ``change`` as the task's next version (1 for the first), numbered
        atomically; ``NotFound`` if the tenant does not exist, ``Conflict`` if
        concurrent changes keep taking the number."""

    async def current_version(self, tenant_id: str, name: str) -> TaskVersion | None:
        """The task's newest version, if the tenant stores any."""

    async def list_versions(self, tenant_id: str, name: str) -> list[TaskVersion]:
        """Every version of the task, newest first (empty if none)."""

    async def list_tasks(self, tenant_id: str) -> list[TaskVersion]:
        """The newest version of each task the tenant stores settings for, by name."""
