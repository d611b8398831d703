"""The EventPoller on both stores: it reads events only when someone is subscribed,
and a client that subscribes while it looks for the horizon misses nothing."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.domain.events import Event
from conveyor.domain.jobs import Job, new_job
from conveyor.loops.live_events import EventPoller
from conveyor.services.live import Fanout, Subscription
from conveyor.store.protocol import Store

pytestmark = pytest.mark.anyio

TENANT = "default"


async def _enqueue(store: Store) -> Job:
    [job] = await store.enqueue([new_job("t", None, now=store.clock())])
    return job


async def _queued(subscription: Subscription) -> list[Event]:
    found = []
    while (event := await subscription.get(0.01)) is not None:
        found.append(event)
    return found


async def test_with_nobody_subscribed_the_poller_moves_its_cursor_without_reading(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fanout = Fanout(max_queued=100)
    poller = EventPoller(store, fanout, interval=1)
    reads: list[int] = []
    list_events = store.list_events

    async def counted(*args: Any) -> list[Event]:
        reads.append(1)
        return await list_events(*args)

    monkeypatch.setattr(store, "list_events", counted)
    for _ in range(3):
        await _enqueue(store)
    assert await poller.run_once() == 0
    assert reads == []
    assert poller.cursor == await store.event_horizon() > 0

    subscription = fanout.subscribe(TENANT)
    job = await _enqueue(store)
    assert await poller.run_once() == 1
    assert [(e.type, e.job_id) for e in await _queued(subscription)] == [("job.enqueued", job.id)]


async def test_catching_up_at_start_reads_no_events_and_publishes_none_of_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        await _enqueue(store)
    fanout = Fanout(max_queued=100)
    poller = EventPoller(store, fanout, interval=1)
    subscription = fanout.subscribe(TENANT)

    async def no_reading(*args: Any) -> list[Event]:
        raise AssertionError("catch_up read the events")

    monkeypatch.setattr(store, "list_events", no_reading)
    await poller.catch_up()
    assert poller.cursor == await store.event_horizon() > 0
    assert await _queued(subscription) == []


async def test_a_client_that_subscribes_while_the_horizon_is_read_misses_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fanout = Fanout(max_queued=100)
    poller = EventPoller(store, fanout, interval=1)
    await poller.catch_up()
    event_horizon = store.event_horizon
    subscribed: list[Subscription] = []
    committed: list[Job] = []

    async def subscribed_meanwhile(after_id: int = 0) -> int:
        # The client subscribes and a job commits while the poller waits for the answer.
        subscribed.append(fanout.subscribe(TENANT))
        committed.append(await _enqueue(store))
        return await event_horizon(after_id)

    monkeypatch.setattr(store, "event_horizon", subscribed_meanwhile)
    await poller.run_once()
    await poller.run_once()
    assert [e.job_id for e in await _queued(subscribed[0])] == [committed[0].id]
