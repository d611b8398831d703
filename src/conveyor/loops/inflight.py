"""Work a loop sends in the background (webhook deliveries, mails), by id.

A loop reads its due items from the database, then starts each in a task of its
own; an item stays due in the database until its task records the outcome. So a read
that runs while an item's task finishes may return that item as still due, although
it was just sent. :meth:`Inflight.due` leaves out the items in flight and those that
ended while the read ran: nothing is sent twice by one node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar


class HasId(Protocol):
    """An item with an ``id``."""

    @property
    def id(self) -> int:
        """The item's id."""


Item = TypeVar("Item", bound=HasId)


class Inflight:
    """The tasks sending items now, and the items that ended during a read."""

    def __init__(self) -> None:
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._finishes = 0
        self._reading = 0
        self._ended: dict[int, int] = {}
        """Item id -> its finish number, for items that ended while a read ran."""

    def __len__(self) -> int:
        return len(self.tasks)

    async def due(self, read: Callable[[], Awaitable[Sequence[Item]]]) -> list[Item]:
        """What ``read`` returns, minus the items in flight or ended while it ran."""
        mark = self._finishes
        self._reading += 1
        try:
            found = await read()
        finally:
            self._reading -= 1
        ended = {item_id for item_id, number in self._ended.items() if number > mark}
        if not self._reading:
            self._ended.clear()
        return [item for item in found if item.id not in self.tasks and item.id not in ended]

    def start(
        self,
        item_id: int,
        work: Coroutine[Any, Any, None],
        on_done: Callable[[], None],
        name: str,
    ) -> None:
        """Run ``work`` in a task; ``on_done`` is called when it has ended."""
        task = asyncio.create_task(work, name=name)
        self.tasks[item_id] = task
        task.add_done_callback(lambda _: self._finished(item_id, on_done))

    def _finished(self, item_id: int, on_done: Callable[[], None]) -> None:
        self.tasks.pop(item_id, None)
        self._finishes += 1
        if self._reading:
            self._ended[item_id] = self._finishes
        on_done()

    async def drain(self, also: Callable[[], Sequence[asyncio.Task[None]]] = tuple) -> None:
        """Wait until nothing is in flight (and none of ``also``'s tasks is left)."""
        while self.tasks or also():
            await asyncio.gather(*self.tasks.values(), *also(), return_exceptions=True)
