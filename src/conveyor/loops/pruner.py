"""The Pruner: forgets audit entries older than the retention period."""

from __future__ import annotations

from datetime import timedelta

from conveyor.loops.base import Loop
from conveyor.services.audit import AuditLog


class Pruner(Loop):
    """Deletes what is kept only for a while (the audit log, for now)."""

    name = "pruner"

    def __init__(self, audit: AuditLog, retention: timedelta, interval: float) -> None:
        super().__init__(interval)
        self.audit = audit
        self.retention = retention

    async def run_once(self) -> int:
        """Delete audit entries past the retention period."""
        return await self.audit.prune(self.retention)
