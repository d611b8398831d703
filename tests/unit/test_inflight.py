"""The in-flight bookkeeping of the notifier and the mailer: an item that ends while
due items are being read is not handed out again, whatever the read returned."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from conveyor.loops.inflight import Inflight

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Item:
    id: int


async def test_an_item_in_flight_or_ended_during_the_read_is_left_out() -> None:
    inflight = Inflight()
    release = asyncio.Event()
    ended: list[int] = []

    async def send() -> None:
        await release.wait()

    inflight.start(1, send(), lambda: ended.append(1), "item-1")
    inflight.start(2, send(), lambda: ended.append(2), "item-2")

    async def stale_read() -> list[Item]:
        # The database still says 1, 2 and 3 are due; 1 and 2 end meanwhile.
        release.set()
        while len(ended) < 2:
            await asyncio.sleep(0)
        return [Item(1), Item(2), Item(3)]

    assert await inflight.due(stale_read) == [Item(3)]
    assert len(inflight) == 0

    async def fresh_read() -> list[Item]:
        return [Item(1), Item(3)]

    assert await inflight.due(fresh_read) == [Item(1), Item(3)]


async def test_items_still_running_are_left_out_and_drain_waits_for_them() -> None:
    inflight = Inflight()
    release = asyncio.Event()

    async def send() -> None:
        await release.wait()

    inflight.start(5, send(), lambda: None, "item-5")

    async def read() -> list[Item]:
        return [Item(5), Item(6)]

    assert await inflight.due(read) == [Item(6)]
    release.set()
    await inflight.drain()
    assert len(inflight) == 0
