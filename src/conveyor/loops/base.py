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
        self._wake = asyncio.Event()

    @abstractmethod
    async def run_once(self) -> int:
        """Do one round of work; return how many things it handled."""

    async def seconds_to_wait(self) -> float:
        """How long to rest after a round; loops that know when work is due shorten it."""
        return self.interval

    def wake(self) -> None:
        """Cut the current rest short (something changed that may be due now)."""
        self._wake.set()

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
            failed = True
            try:
                await self.run_once()
                failed = False
            except ConveyorError as exc:
                log.warning("%s: %s", self.name, exc.message)
            except Exception:
                log.exception("%s failed; trying again in %.1f s", self.name, self.interval)
            await self._rest(failed)

    async def _rest(self, failed: bool) -> None:
        """Rest until work is due; after a failed round, the whole interval (the work
        that failed is still due, and asking at once would spin)."""
        try:
            seconds = self.interval if failed else await self.seconds_to_wait()
        except Exception:
            log.exception("%s: cannot tell when work is due", self.name)
            seconds = self.interval
        stop = asyncio.ensure_future(self._stop.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {stop, wake}, timeout=max(seconds, 0.0), return_when="FIRST_COMPLETED"
            )
        finally:
            stop.cancel()
            wake.cancel()
        self._wake.clear()
