"""Leadership on PostgreSQL: a session advisory lock on a connection of its own (see
:mod:`conveyor.store.leadership`)."""

from __future__ import annotations

import contextlib
import logging

import psycopg

from conveyor.store.leadership import SCHEDULER_LOCK, leader_name

log = logging.getLogger("conveyor.leadership")

CONNECT_TIMEOUT = 5


class AdvisoryLockLeadership:
    """Leadership by a PostgreSQL session advisory lock on a dedicated connection."""

    def __init__(self, url: str, lock_id: int = SCHEDULER_LOCK, role: str = "scheduler") -> None:
        self.url = url
        self.lock_id = lock_id
        self.role = role
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._held = False

    async def hold(self) -> bool:
        """Check the lock's connection is alive (it holds the lock), or try to take it."""
        try:
            conn = await self._connection()
            if self._held:
                await conn.execute("SELECT 1")
                return True
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_id,))
            row = await cursor.fetchone()
            self._held = bool(row and row[0])
            if self._held:
                log.info("this node now leads the %s", self.role)
            return self._held
        except psycopg.Error as exc:
            if self._held:
                log.warning("lost the %s lead: %s", self.role, exc)
            await self._drop()
            return False

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._held = False
            self._conn = await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name=leader_name(self.role),
            )
        return self._conn

    async def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
        self._conn = None

    async def release(self) -> None:
        """Close the connection: the lock is released with it."""
        await self._drop()
