"""The audit log: every change made through the API, written in batches.

A request only appends its entry to a buffer; :meth:`AuditLog.flush` writes what
is buffered in one transaction (the :class:`~conveyor.loops.auditor.AuditFlusher`
calls it several times a second, and the server once more when it stops). Reading
the log flushes first, so a node always shows its own latest changes. A hard crash
can lose the last fraction of a second of entries, never a job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from conveyor.domain.accounts import AuditEntry, AuditRecord, Principal, Scope
from conveyor.store.accounts_protocol import AccountStore

log = logging.getLogger("conveyor.audit")

MAX_BUFFERED = 100_000


class AuditLog:
    """Records changes, and shows them to owners and admins."""

    def __init__(self, accounts: AccountStore, clock: Callable[[], datetime]) -> None:
        self.accounts = accounts
        self.clock = clock
        self._pending: list[AuditRecord] = []
        self._flushing = asyncio.Lock()

    def record(
        self,
        actor: Principal,
        action: str,
        target: str,
        detail: Mapping[str, Any],
        ip: str | None,
    ) -> None:
        """Buffer one change of the actor's tenant (written by the next flush)."""
        if len(self._pending) >= MAX_BUFFERED:
            log.error("the audit buffer is full: the database is not taking entries")
            return
        self._pending.append(
            AuditRecord(
                actor.tenant_id, actor.actor, action, target, dict(detail), ip, self.clock()
            )
        )

    async def flush(self) -> int:
        """Write every buffered entry in one transaction; return how many. One flush at
        a time: a reader's flush waits for the background one, so it then reads every
        entry recorded before it, in order."""
        async with self._flushing:
            batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                await self.accounts.add_audit_entries(batch)
            except BaseException:
                self._pending[:0] = batch  # keep them for the next try, in order
                raise
            return len(batch)

    async def entries(
        self, actor: Principal, after_id: int = 0, limit: int = 100, since: datetime | None = None
    ) -> list[AuditEntry]:
        """The actor's tenant's entries, oldest first (owners and admins)."""
        if not actor.is_admin:
            actor.require(Scope.ADMIN)
        await self.flush()
        return await self.accounts.list_audit(actor.tenant_id, after_id, limit, since)

    async def prune(self, retention: timedelta) -> int:
        """Forget entries older than the retention period."""
        return await self.accounts.prune_audit(self.clock() - retention)
