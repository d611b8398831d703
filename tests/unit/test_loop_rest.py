"""The shape every background loop has: after a failed round it rests the whole interval."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.loops.base import Loop

pytestmark = pytest.mark.anyio


class Failing(Loop):
    """Fails every round, and says work is due at once (as a schedule that could not
    move on would)."""

    name = "failing"

    def __init__(self) -> None:
        super().__init__(interval=30.0)
        self.rounds = 0

    async def run_once(self) -> int:
        self.rounds += 1
        raise RuntimeError("the database is restarting")

    async def seconds_to_wait(self) -> float:
        return 0.0


async def test_a_failed_round_rests_the_interval_instead_of_spinning() -> None:
    loop = Failing()
    loop.start()
    await asyncio.sleep(0.2)
    await loop.stop()
    assert loop.rounds == 1


async def test_wake_cuts_the_rest_short() -> None:
    loop = Failing()
    loop.start()
    await asyncio.sleep(0.05)
    loop.wake()
    await asyncio.sleep(0.1)
    await loop.stop()
    assert loop.rounds == 2
