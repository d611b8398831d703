"""The AuditFlusher: writes buffered audit entries several times a second."""

from __future__ import annotations

from conveyor.loops.base import Loop
from conveyor.services.audit import AuditLog


class AuditFlusher(Loop):
    """Flushes the audit buffer in one transaction per round."""

    name = "audit-flusher"

    def __init__(self, audit: AuditLog, interval: float = 0.2) -> None:
        super().__init__(interval)
        self.audit = audit

    async def run_once(self) -> int:
        """Write what the requests since the last round buffered."""
        return await self.audit.flush()
