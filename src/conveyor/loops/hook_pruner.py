"""The ReceiptPruner: forgets requests received by incoming hooks after the retention
period, and enqueues the jobs of those whose enqueue failed after they were stored.
Every node may run it (a delete is idempotent, an enqueue too by its message id), so it
needs no leader."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from conveyor.loops.base import Loop
from conveyor.store.hooks_protocol import HookStore

RETRY_INTERVAL = 60.0
"""Seconds between looks for receipts whose job was never enqueued."""
PRUNE_EVERY = timedelta(hours=1)
RETRY_AFTER = timedelta(minutes=1)
"""How old a receipt without its job must be before it is retried (younger ones may
still be on their way)."""
RETRY_WINDOW = timedelta(days=1)
"""How long a receipt's lost enqueue is retried (then it is only logged, each time)."""

EnqueueLost = Callable[[datetime, datetime], Awaitable[int]]
"""Enqueue the lost jobs of receipts received in ``[since, before)``; how many."""


class ReceiptPruner(Loop):
    """Deletes every tenant's hook receipts older than ``retention`` (hourly) and, each
    minute, retries the enqueue of receipts stored without their job."""

    name = "hook-pruner"

    def __init__(
        self,
        store: HookStore,
        retention: timedelta,
        clock: Callable[[], datetime],
        enqueue_lost: EnqueueLost | None = None,
        interval: float = RETRY_INTERVAL,
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.retention = retention
        self.clock = clock
        self.enqueue_lost = enqueue_lost
        self._pruned_at: datetime | None = None

    async def run_once(self) -> int:
        """Retry lost enqueues; delete receipts received before now minus the retention
        period if the last prune is an hour old. How many receipts were deleted."""
        now = self.clock()
        if self.enqueue_lost is not None:
            await self.enqueue_lost(now - RETRY_AFTER - RETRY_WINDOW, now - RETRY_AFTER)
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        return await self.store.prune(now - self.retention)
