"""The one shape every background loop has: ``run_once`` on an interval, ``start``, ``stop``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

from conveyor.domain.errors import ConveyorError

log = logging.getLogger("conveyor.loops")


class Loop(ABC):
    """Calls :meth:`run_once` every ``interval`` seconds until stopped; errors are logged,
    never fatal (the database may be restarting)."""

    name = "loop"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @abstractmethod
    async def run_once(self) -> int:
        """Do one round of work; return how many things it handled."""

    def start(self) -> None:
        """Begin looping in the background."""
        self._stop.clear()
        self._task = asyncio.create_task(self._forever(), name=f"conveyor-{self.name}")

    async def stop(self) -> None:
        """Finish the current round and stop."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except ConveyorError as exc:
                log.warning("%s: %s", self.name, exc.message)
            except Exception:
                log.exception("%s failed; trying again in %.1f s", self.name, self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
