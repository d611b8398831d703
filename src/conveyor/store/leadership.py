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

import fcntl
import logging
import os
import socket
from typing import Protocol

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


class Leadership(Protocol):
    """Whether this process leads; asking also tries to become the leader."""

    async def hold(self) -> bool:
        """``True`` if this process leads now (taking the lead if it is free)."""

    async def release(self) -> None:
        """Give the lead up (on shutdown), so another node takes over at once."""


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
        from conveyor.store.postgres.leadership import AdvisoryLockLeadership

        return AdvisoryLockLeadership(database_url, LOCKS[role], role)
    path = database_url.removeprefix("sqlite:///")
    if path in ("", ":memory:"):
        return SoleLeadership()
    return FileLockLeadership(f"{path}.{role}.lock", role)
