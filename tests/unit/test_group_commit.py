"""Group commit: concurrent calls share a write, each gets its own results, and one
caller's failure does not fail the others."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.store.grouping import GroupCommit, Uncertain

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


class KeptWriter(Writer):
    """A :class:`Writer` whose merged writes keep their rows and then fail (a lookup
    after the commit, a connection lost while the commit was answered): uncertain."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[int] = []

    async def write(self, items: list[int]) -> list[int]:
        doubled = await super().write(items)
        self.kept += items
        if len(items) > 1:
            raise Uncertain(ConnectionError("lost after the commit"))
        return doubled


async def test_an_uncertain_group_fails_every_caller_and_writes_none_again() -> None:
    writer = KeptWriter()
    group = GroupCommit(writer.write)
    first = asyncio.ensure_future(group.submit([1]))
    await asyncio.sleep(0)
    waiting = [asyncio.ensure_future(group.submit([n])) for n in (2, 3)]
    assert await first == [2]
    for call in waiting:
        with pytest.raises(ConnectionError, match="after the commit"):
            await call
    assert writer.kept == [1, 2, 3]  # each once: the group was not written again


async def test_callers_of_a_cancelled_writer_are_cancelled_not_left_waiting() -> None:
    started = asyncio.Event()

    async def stuck(items: list[int]) -> list[int]:
        started.set()
        await asyncio.Event().wait()
        return items

    group = GroupCommit(stuck)
    call = asyncio.ensure_future(group.submit([1]))
    await started.wait()
    (writer,) = group._writers
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(1):
            await call


class CountingWriter(Writer):
    """A :class:`Writer` that remembers how many writes ran at once, at most."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most_running = 0

    async def write(self, items: list[int]) -> list[int]:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            return await super().write(items)
        finally:
            self.running -= 1


async def test_with_two_writers_a_second_call_does_not_wait_for_the_first_commit() -> None:
    writer = CountingWriter()
    group = GroupCommit(writer.write, writers=2)
    first = asyncio.ensure_future(group.submit([1]))
    await asyncio.sleep(0.001)  # its write is under way
    second = asyncio.ensure_future(group.submit([2]))
    await asyncio.sleep(0.001)
    assert writer.running == 2
    later = [asyncio.ensure_future(group.submit([n])) for n in range(3, 6)]
    assert [await first, await second] == [[2], [4]]
    assert [await f for f in later] == [[6], [8], [10]]
    # the three that came while both writers were busy share one write
    assert writer.calls == [[1], [2], [3, 4, 5]]


class GatedWriter(CountingWriter):
    """A :class:`CountingWriter` whose writes wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def write(self, items: list[int]) -> list[int]:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
            return [item * 2 for item in items]
        finally:
            self.running -= 1


async def test_never_more_writes_run_at_once_than_writers() -> None:
    writer = GatedWriter()
    group = GroupCommit(writer.write, writers=3)
    calls = []
    for n in range(6):
        calls.append(asyncio.ensure_future(group.submit([n])))
        await asyncio.sleep(0.001)  # each call finds the writers before it still busy
    assert writer.running == 3
    writer.gate.set()
    assert [await call for call in calls] == [[2 * n] for n in range(6)]
    assert writer.most_running == 3


async def test_a_call_made_as_the_writer_finishes_is_written() -> None:
    # The caller wakes before the finished writer's task is done: it must not count
    # that writer as busy and wait for it.
    group = GroupCommit(Writer().write)
    assert await group.submit([1]) == [2]
    async with asyncio.timeout(2):  # in this task: wait_for would start a new one
        assert await group.submit([2]) == [4]


def test_a_group_commit_needs_a_writer() -> None:
    with pytest.raises(ValueError, match="at least one writer"):
        GroupCommit(Writer().write, writers=0)


async def test_a_second_writer_starts_only_once_enough_items_wait() -> None:
    writer = CountingWriter()
    group = GroupCommit(writer.write, writers=2, extra_writer_at=3)
    first = asyncio.ensure_future(group.submit([1]))
    await asyncio.sleep(0.001)  # the first writer is busy
    small = asyncio.ensure_future(group.submit([2]))
    await asyncio.sleep(0.001)
    assert writer.running == 1  # one item waits: it waits for the first writer
    big = asyncio.ensure_future(group.submit([3, 4]))
    await asyncio.sleep(0.001)
    assert writer.running == 2  # three items wait: a second writer takes them
    assert [await first, await small, await big] == [[2], [4], [6, 8]]
    assert writer.calls == [[1], [2, 3, 4]]
