"""What every system under test provides: enqueue, a worker command, and its progress."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import psycopg


@dataclass(frozen=True, slots=True)
class Progress:
    """Jobs done so far and, from the database's timestamps, when work began and ended."""

    done: int
    first_start: float | None = None  # epoch seconds
    last_finish: float | None = None


class System(abc.ABC):
    """One queue on one fresh database. Use as ``async with System(url, workdir):``."""

    name: ClassVar[str]
    postgres: ClassVar[bool] = True
    batch_api: ClassVar[str]  # what the batched enqueue calls, for the report

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    def database_name(self) -> str | None:
        """The PostgreSQL database this system runs on; ``None`` on another store."""
        return self.url.rsplit("/", 1)[-1] if self.postgres else None

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def install(self) -> None:
        """Create the schema (before :meth:`open`)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect the client used to enqueue and to read progress."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect."""

    @abc.abstractmethod
    async def enqueue_noop(self) -> None:
        """Enqueue one no-op job with one call."""

    @abc.abstractmethod
    async def enqueue_noops(self, count: int) -> None:
        """Enqueue ``count`` no-op jobs with one call of the system's batch API."""

    @abc.abstractmethod
    async def enqueue_stamp(self, seq: int) -> None:
        """Enqueue one job that records when it starts (see :mod:`benchmarks.stamps`)."""

    @abc.abstractmethod
    def worker_command(self) -> list[str]:
        """The command line of one worker process."""

    @abc.abstractmethod
    def worker_env(self) -> dict[str, str]:
        """Environment variables the worker needs (the database URL)."""

    async def refresh_statistics(self) -> None:
        """Refresh the planner's statistics after a bulk load (PostgreSQL: ``ANALYZE``).

        Nothing by default: SQLite has no autovacuum whose work this would stand in for.
        """
        return

    @abc.abstractmethod
    async def done_count(self) -> int:
        """How many no-op jobs have finished successfully (cheap: polled)."""

    @abc.abstractmethod
    async def progress(self) -> Progress:
        """Done count and the first start / last finish times (read once, at the end)."""


class PostgresReader:
    """A connection that reads progress counters and timestamps from PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def open(self) -> None:
        """Connect (autocommit: every read sees the latest commits)."""
        self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def close(self) -> None:
        """Disconnect."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def row(self, sql: str) -> tuple[object, ...]:
        """The first row of a query of ours."""
        if self._conn is None:
            raise RuntimeError("the reader is not open")
        found = await (await self._conn.execute(sql)).fetchone()  # type: ignore[arg-type]
        if found is None:
            raise RuntimeError(f"no row from {sql!r}")
        return found

    async def execute(self, sql: str) -> None:
        """Run a statement of ours."""
        if self._conn is None:
            raise RuntimeError("the reader is not open")
        await self._conn.execute(sql)  # type: ignore[arg-type]

    async def count(self, sql: str) -> int:
        """A single integer."""
        return int(str((await self.row(sql))[0]))

    async def progress(self, sql: str) -> Progress:
        """A ``(done, first_start_epoch, last_finish_epoch)`` query as a :class:`Progress`."""
        done, first, last = await self.row(sql)
        return Progress(
            done=int(str(done)),
            first_start=None if first is None else float(str(first)),
            last_finish=None if last is None else float(str(last)),
        )
