"""Wake-ups: the statements that make jobs available send a NOTIFY on ``CHANNEL``;
a worker waiting for work wakes on one, from any process, or on this store's own
write."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg

from conveyor.store.postgres.base import PostgresBase

CHANNEL = "conveyor_jobs"


class PostgresWakeups(PostgresBase):
    """Waiting for work: one connection LISTENing for the whole store."""

    async def wait_for_work(self, max_wait: float) -> None:
        """Return on a NOTIFY (from any process) or this store's own write, else after ``max_wait``.

        A wake-up is only a hint: notifications are lost while the listening
        connection is down, so callers still poll.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="conveyor-pg-listener")
            with contextlib.suppress(TimeoutError):  # start listening before waiting
                async with asyncio.timeout_at(deadline):
                    await self._listening.wait()
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
        try:
            async with asyncio.timeout_at(deadline):
                await self._wakeup.wait()
        except TimeoutError:
            return
        self._wakeup.clear()

    async def _listen(self) -> None:
        """Keep one dedicated connection LISTENing; reconnect with backoff when it drops."""
        backoff = 0.1
        reconnecting = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if reconnecting:  # work may have arrived while nobody listened
                        self._wakeup.set()
                    backoff = 0.1
                    async for _ in conn.notifies():
                        self._wakeup.set()
            except psycopg.Error:
                self._listening.clear()
            reconnecting = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
