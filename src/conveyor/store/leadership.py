"""Leadership: which process runs the singleton loops (the scheduler, the webhook
notifier) when several ``serve`` nodes share one database. Each loop has a lock of its
own (:data:`LOCKS`), so the scheduler and the notifier may lead on different nodes.

PostgreSQL: a session advisory lock held on a connection of its own. The server
holding it leads; when its process dies the connection closes and the lock goes
with it, and the next node to ask (every loop round, about once a second) leads.
SQLite: an exclusive ``flock`` on a file next to the database, released by the
operating system when the holder exits. Leadership is an optimisation, not the
guarantee: each firing's idempotency key already makes a second firing of the same
time find the first job.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from typing import Protocol

import psycopg

log = logging.getLogger("conveyor.leadership")

# pg_try_advisory_lock takes a bigint; this one is "conveyor" in ASCII, shortened.
SCHEDULER_LOCK = 0x636F6E7665796F72 & 0x7FFF_FFFF_FFFF_FFFF
NOTIFIER_LOCK = SCHEDULER_LOCK - 1
MAILER_LOCK = SCHEDULER_LOCK - 0x6D61696C  # "mail"
AMQP_EGRESS_LOCK = SCHEDULER_LOCK - 0x616D7170  # "amqp"
LOCKS = {
    "scheduler": SCHEDULER_LOCK,
    "notifier": NOTIFIER_LOCK,
    "mailer": MAILER_LOCK,
    "amqp-egress": AMQP_EGRESS_LOCK,
}
"""The advisory lock of each singleton loop (its role)."""
CONNECT_TIMEOUT = 5


class Leadership(Protocol):
    """Whether this process leads; asking also tries to become the leader."""

    async def hold(self) -> bool:
        """``True`` if this process leads now (taking the lead if it is free)."""

    async def release(self) -> None:
        """Give the lead up (on shutdown), so another node takes over at once."""


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


def leader_name(role: str = "scheduler") -> str:
    """How the lock's connection names itself in ``pg_stat_activity``: an operator
    finds the leading process with ``SELECT application_name FROM pg_locks JOIN
    pg_stat_activity USING (pid) WHERE locktype = 'advisory'``."""
    return f"conveyor-{role}:{socket.gethostname()}:{os.getpid()}"


class FileLockLeadership:
    """Leadership by an exclusive, non-blocking ``flock`` on ``path`` (SQLite)."""

    def __init__(self, path: str, role: str = "scheduler") -> None:
        self.path = path
        self.role = role
        self._fd: int | None = None

    async def hold(self) -> bool:
        """``True`` once this process holds the lock file."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        log.info(
            "this process now leads the %s (lock %s, pid %d)", self.role, self.path, os.getpid()
        )
        return True

    async def release(self) -> None:
        """Unlock and close the lock file."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class SoleLeadership:
    """For a database only this process can see (SQLite in memory): always the leader."""

    async def hold(self) -> bool:
        """Always ``True``."""
        return True

    async def release(self) -> None:
        """Nothing to give up."""


def leadership_for(database_url: str, role: str = "scheduler") -> Leadership:
    """The leadership of one singleton loop (``role``, a key of :data:`LOCKS`) fitting
    the database: an advisory lock or a lock file."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return AdvisoryLockLeadership(database_url, LOCKS[role], role)
    path = database_url.removeprefix("sqlite:///")
    if path in ("", ":memory:"):
        return SoleLeadership()
    return FileLockLeadership(f"{path}.{role}.lock", role)
