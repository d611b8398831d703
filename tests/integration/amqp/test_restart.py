"""A RabbitMQ restart in the middle of ingress: no persistent message is lost, none is
applied twice (redeliveries find their first job by ``message_id``), the consumer is
really consuming again afterwards, and egress publishes every event, none skipped."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from conveyor.amqp.routes import dead_letter_queue
from conveyor.domain.jobs import Job
from conveyor.services.jobs import JobService
from conveyor.store import amqp_for
from conveyor.store.amqp_protocol import EGRESS_CURSOR, RouteSpec
from tests.integration.amqp.conftest import (
    TENANT,
    Bridged,
    Broker,
    connect,
    eventually,
    forget_amqp_rows,
    rabbitmqctl,
    start_bridged,
)

pytestmark = [
    pytest.mark.anyio,
    # aiormq 6 leaves its stream writer open when the broker closes a connection (a
    # restart, a forced close); the socket is closed, the writer object is only collected.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <function StreamWriter.__del__"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
]

MESSAGES = 200
RESTART_AFTER = 40


class SlowToAck(JobService):
    """The real job service, with a pause between the commit and the ack: a restart
    in that window makes RabbitMQ deliver a committed message again."""

    async def enqueue(self, task: str, payload: Any = None, options: Any = None) -> Job:
        """Enqueue, then dawdle."""
        job = await super().enqueue(task, payload, options)
        await asyncio.sleep(0.05)
        return job


@pytest.fixture
async def slow_bridged(migrated_url: str, broker: Broker) -> AsyncIterator[Bridged]:
    """A bridged Server taking two messages at a time, slow to ack them; the broker is
    started again at the end whatever happens in the test."""
    await forget_amqp_rows(migrated_url)
    broker.exchanges += [broker.name("test.dead-letter"), broker.name("test.events")]
    broker.queues.append(dead_letter_queue(broker.name("test.dead-letter")))
    server = await start_bridged(migrated_url, broker, amqp_prefetch=2)
    assert server.amqp is not None
    server.amqp.ingress.context.jobs_for = lambda tenant: SlowToAck(server.store, tenant)
    try:
        yield Bridged(server, broker, broker.name("test.dead-letter"), broker.name("test.events"))
    finally:
        try:
            await server.stop()
        finally:
            await asyncio.to_thread(rabbitmqctl, "start_app")
            await _until_reachable()
            gc.collect()  # the writers aiormq left open go here, not in a later test


async def _until_reachable() -> None:
    async def reachable() -> bool:
        try:
            connection = await connect(wait=1.0)
        except Exception:
            return False
        await connection.close()
        return True

    await eventually(reachable, seconds=60, what="RabbitMQ to accept connections")


async def test_a_broker_restart_loses_nothing_and_duplicates_nothing(
    slow_bridged: Bridged,
) -> None:
    bridged = slow_bridged
    broker = bridged.broker
    server = bridged.server
    assert server.amqp is not None
    events_seen = await _bind_events(bridged)
    queue = broker.name("default.crm")
    await broker.queue(queue)
    ids = [f"crm-{n}" for n in range(MESSAGES)]
    for message_id in ids:
        body = json.dumps({"contact_id": message_id, "changed": {"n": 1}}).encode()
        await broker.publish(queue, body, message_id=message_id, content_type="application/json")
    route = await amqp_for(server.store).add(
        TENANT, RouteSpec(queue, "crm.contact.update"), server.now()
    )
    server.amqp.routes_changed()

    await eventually(lambda: _jobs_at_least(bridged, RESTART_AFTER), what="the first jobs")
    sessions = server.amqp.ingress.sessions
    assert len(await bridged.jobs()) < MESSAGES - 20, "ingress finished before the restart"
    await asyncio.to_thread(rabbitmqctl, "stop_app")
    await asyncio.to_thread(rabbitmqctl, "start_app")
    await _until_reachable()

    await eventually(lambda: _jobs_at_least(bridged, MESSAGES), seconds=60, what="every job")
    assert server.amqp.ingress.sessions > sessions
    jobs = await bridged.jobs()
    assert sorted(j.message_id or "" for j in jobs) == sorted(ids)

    check = await connect()
    async with check:
        broker.channel = await check.channel()
        assert await broker.ready(queue) == 0
        await broker.publish(
            queue, b'{"after": "restart"}', message_id="crm-after", content_type="application/json"
        )
        await eventually(lambda: _jobs_at_least(bridged, MESSAGES + 1), what="the late job")
        await eventually(lambda: _all_counted(bridged, route.id), what="the counts")
        await _every_event_published(bridged, broker, events_seen)
    assert len(await bridged.jobs()) == MESSAGES + 1


async def _bind_events(bridged: Bridged) -> str:
    broker = bridged.broker
    await eventually(lambda: _egress_started(bridged), what="the egress cursor")
    await broker.channel.declare_exchange(bridged.events, aio_pika.ExchangeType.TOPIC, durable=True)
    seen = await broker.queue(broker.name("test.events-seen"))
    await seen.bind(bridged.events, "default.#")
    return seen.name


async def _every_event_published(bridged: Bridged, broker: Broker, queue_name: str) -> None:
    """Every event after the start reached the bound queue (some maybe twice)."""
    store = bridged.server.store
    events = await store.list_events(None, 0, 10_000)

    async def caught_up() -> bool:
        cursor = await amqp_for(store).read_cursor(EGRESS_CURSOR)
        return cursor == events[-1].id

    await eventually(caught_up, seconds=30, what="egress to catch up")
    queue = await broker.channel.declare_queue(queue_name, passive=True)
    received: set[str] = set()
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        received.add(message.message_id or "")
    wanted = {str(e.id) for e in events if e.tenant_id == TENANT}
    assert wanted - received == set()


async def _all_counted(bridged: Bridged, route_id: int) -> bool:
    """Every job counted accepted once; every delivery counted."""
    counts = await bridged.counts(route_id)
    return counts.accepted == MESSAGES + 1 and counts.received == (
        counts.accepted + counts.duplicates + counts.failed
    )


async def _egress_started(bridged: Bridged) -> bool:
    return await amqp_for(bridged.server.store).read_cursor(EGRESS_CURSOR) is not None


async def _jobs_at_least(bridged: Bridged, count: int) -> bool:
    return len(await bridged.jobs()) >= count


async def test_messages_in_hand_when_the_connection_dies_are_applied_once(
    slow_bridged: Bridged,
) -> None:
    """As when a consumer dies after its commit but before its ack: RabbitMQ delivers
    the unacked messages again, and each finds its first job."""
    bridged = slow_bridged
    broker = bridged.broker
    server = bridged.server
    assert server.amqp is not None
    queue = broker.name("default.crm")
    await broker.queue(queue)
    ids = [f"crm-{n}" for n in range(120)]  # still coming when the connection dies
    for message_id in ids:
        await broker.publish(queue, b"{}", message_id=message_id, content_type="application/json")
    route = await amqp_for(server.store).add(
        TENANT, RouteSpec(queue, "crm.contact.update"), server.now()
    )
    server.amqp.routes_changed()
    await eventually(lambda: _jobs_at_least(bridged, 5), what="the first jobs")
    sessions = server.amqp.ingress.sessions
    await asyncio.to_thread(rabbitmqctl, "close_all_connections", "consumer crash")
    await eventually(lambda: _jobs_at_least(bridged, len(ids)), seconds=30, what="every job")
    assert server.amqp.ingress.sessions > sessions
    assert sorted(j.message_id or "" for j in await bridged.jobs()) == sorted(ids)

    async def counted() -> bool:
        counts = await bridged.counts(route.id)
        return counts.accepted == len(ids) and counts.duplicates >= 1

    await eventually(counted, what="a redelivery counted as a duplicate")
