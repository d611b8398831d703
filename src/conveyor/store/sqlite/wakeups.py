"""Wake-ups: a worker waiting for work wakes at once on this store's own write, and
within a few milliseconds on another process's commit (SQLite sends no notifications,
so the store polls ``PRAGMA data_version``)."""

from __future__ import annotations

import asyncio

from conveyor.store.sqlite.base import SQLiteBase

OTHER_PROCESS_POLL = 0.005  # seconds between checks for other processes' commits


class SQLiteWakeups(SQLiteBase):
    """Waiting for work: this process's writes set a flag; other processes' are polled."""

    def _changed_elsewhere(self) -> bool:
        version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    async def wait_for_work(self, max_wait: float) -> None:
        """Wake on this process's writes at once, on other processes' within ~5 ms."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while not self._wakeup.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(min(remaining, OTHER_PROCESS_POLL)):
                    await self._wakeup.wait()
            except TimeoutError:
                if await self._run(self._changed_elsewhere):
                    break
        self._wakeup.clear()
