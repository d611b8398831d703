"""Group commit: concurrent calls share a write, each gets its own results, and one
caller's failure does not fail the others."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.store.grouping import GroupCommit

pytestmark = pytest.mark.anyio


class Writer:
    """Doubles numbers, one 'transaction' per call; refuses negative numbers."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def write(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        await asyncio.sleep(0.01)
        if any(item < 0 for item in items):
            raise ValueError("negative")
        return [item * 2 for item in items]


async def test_a_lone_call_is_written_at_once() -> None:
    writer = Writer()
    group = GroupCommit(writer.write)
    assert await group.submit([1, 2]) == [2, 4]
    assert writer.calls == [[1, 2]]


async def test_calls_that_wait_share_one_write_and_get_their_own_results() -> None:
    writer = Writer()
    group = GroupCommit(writer.write)
    first = asyncio.ensure_future(group.submit([0, 100]))
    await asyncio.sleep(0.001)  # its write is under way
    results = await asyncio.gather(*(group.submit([n, n + 100]) for n in range(1, 5)))
    assert await first == [0, 200]
    assert results == [[2 * n, 2 * (n + 100)] for n in range(1, 5)]
    # the first call writes alone; the four that arrived meanwhile share the next write
    assert writer.calls == [[0, 100], [1, 101, 2, 102, 3, 103, 4, 104]]


async def test_a_failing_caller_fails_alone() -> None:
    writer = Writer()
    group = GroupCommit(writer.write)
    first = asyncio.ensure_future(group.submit([1]))
    await asyncio.sleep(0)
    good = asyncio.ensure_future(group.submit([2]))
    bad = asyncio.ensure_future(group.submit([-3]))
    assert await first == [2]
    assert await good == [4]
    with pytest.raises(ValueError, match="negative"):
        await bad
    assert writer.calls[-2:] == [[2], [-3]]
