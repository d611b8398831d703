"""The Rescuer: jobs whose worker died go back to available; due jobs become available."""

from __future__ import annotations

import logging

from conveyor.loops.base import Loop
from conveyor.store.protocol import Store

log = logging.getLogger("conveyor.loops")


class Rescuer(Loop):
    """Returns expired leases and promotes due jobs, even when no worker is running."""

    name = "rescuer"

    def __init__(self, store: Store, interval: float) -> None:
        super().__init__(interval)
        self.store = store

    async def run_once(self) -> int:
        """One sweep: rescue expired leases, promote due scheduled and retryable jobs."""
        rescued = await self.store.rescue_expired()
        if rescued:
            log.warning("rescued %d jobs whose worker stopped answering", len(rescued))
        return len(rescued) + await self.store.promote_due()
