"""Group commit: concurrent enqueue calls share one transaction.

Fifty clients enqueueing one job each would otherwise pay fifty commits (fifty
fsyncs on SQLite, fifty ``pg_notify`` locks on PostgreSQL). Calls that arrive while
a transaction is being written wait for the next one, which takes them all. An
idle store writes at once, so a lone call waits for nothing. Every caller is
answered only after the transaction holding its jobs committed.

A database that commits several transactions at once (PostgreSQL) may take more than
one writer: while one group waits for its commit, the next is already being sent,
so the server's work and the database's overlap instead of taking turns. A writer
beyond the first starts only once enough items wait (batches, a backlog): small
calls are cheaper in one bigger transaction than in two small ones.

When a shared write fails, each caller is written again alone, so one caller's bad
input fails only that caller. A write that may have kept some of its items (a
connection lost around its commit, a failure after it) raises :class:`Uncertain`
instead: every caller of the group then gets the error it carries, and none is
written again, which could store its jobs twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Uncertain(Exception):
    """Raised by a group's write when some of its items may be stored: every caller
    gets ``error``, and none is written again."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class GroupCommit(Generic[Item, Result]):
    """Merges concurrent calls of ``write(items) -> results`` (one result per item,
    in order) into as few calls as the writer's speed allows, with at most ``writers``
    calls of ``write`` running at once; a writer beyond the first starts only while at
    least ``extra_writer_at`` items wait."""

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[list[Result]]],
        writers: int = 1,
        extra_writer_at: int = 1,
    ) -> None:
        if writers < 1:
            raise ValueError("a group commit needs at least one writer")
        self._write = write
        self._most_writers = writers
        self._extra_writer_at = extra_writer_at
        self._pending: list[tuple[Sequence[Item], asyncio.Future[list[Result]]]] = []
        self._pending_items = 0
        self._writers: set[asyncio.Task[None]] = set()

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Write ``items`` (with whatever else is waiting) and return their results."""
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, future))
        self._pending_items += len(items)
        if self._needs_writer():
            self._writers.add(asyncio.create_task(self._write_all()))
        return await future

    def _needs_writer(self) -> bool:
        busy = len(self._writers)
        if busy == 0:
            return True
        return busy < self._most_writers and self._pending_items >= self._extra_writer_at

    async def _write_all(self) -> None:
        try:
            while self._pending:
                group, self._pending, self._pending_items = self._pending, [], 0
                await self._write_group(group)
        finally:
            # At once, not in a done callback: a call that arrives before the callback
            # ran would count this writer as busy and wait for nobody.
            writer = asyncio.current_task()
            if writer is not None:
                self._writers.discard(writer)

    async def _write_group(
        self, group: list[tuple[Sequence[Item], asyncio.Future[list[Result]]]]
    ) -> None:
        try:
            await self._settle(group)
        finally:
            # Only a cancelled writer gets here with callers left: they must not wait
            # for ever.
            for _, future in group:
                if not future.done():
                    future.cancel()

    async def _settle(
        self, group: list[tuple[Sequence[Item], asyncio.Future[list[Result]]]]
    ) -> None:
        if len(group) == 1:
            await self._answer(*group[0])
            return
        merged = [item for items, _ in group for item in items]
        try:
            results = await self._write(merged)
        except Uncertain as uncertain:
            for _, future in group:
                _fail(future, uncertain)
            return
        except Exception:
            # One caller's bad input must not fail the others: write each alone.
            for items, future in group:
                await self._answer(items, future)
            return
        start = 0
        for items, future in group:
            if not future.done():
                future.set_result(results[start : start + len(items)])
            start += len(items)

    async def _answer(self, items: Sequence[Item], future: asyncio.Future[list[Result]]) -> None:
        try:
            result = await self._write(list(items))
        except Exception as exc:
            _fail(future, exc)
        else:
            if not future.done():
                future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: Exception) -> None:
    """Give a waiting caller the error: the one an ``Uncertain`` carries, else ``exc``."""
    if not future.done():
        future.set_exception(exc.error if isinstance(exc, Uncertain) else exc)
