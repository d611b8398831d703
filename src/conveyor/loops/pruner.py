"""The Pruner: forgets audit entries older than the retention period."""

from __future__ import annotations

from datetime import timedelta

from conveyor.loops.base import Loop
from conveyor.services.accounts import AccountService


class Pruner(Loop):
    """Deletes what is kept only for a while (the audit log, for now)."""

    name = "pruner"

    def __init__(self, accounts: AccountService, retention: timedelta, interval: float) -> None:
        super().__init__(interval)
        self.accounts = accounts
        self.retention = retention

    async def run_once(self) -> int:
        """Delete audit entries past the retention period."""
        return await self.accounts.prune_audit(self.retention)
