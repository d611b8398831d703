"""The ingress consumer against a real RabbitMQ, through a real Server: messages become
jobs once, refused ones land in the dead-letter exchange with their reason, and a
message is acked only after its job is committed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import replace
from typing import Any

import aio_pika
import pytest

from conveyor.amqp.routes import dead_letter_queue
from conveyor.domain.errors import StoreUnavailable
from conveyor.domain.jobs import Job
from conveyor.services.jobs import JobService
from conveyor.store import amqp_for
from conveyor.store.amqp_protocol import RouteSpec
from tests.integration.amqp.conftest import Bridged, eventually

pytestmark = pytest.mark.anyio

CHANGE = {"contact_id": 42, "changed": {"phone": "+55 11 5555-0101"}}


def change(message_id: str) -> dict[str, Any]:
    """Properties of a CRM change message."""
    return {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "message_id": message_id,
    }


async def test_a_json_message_becomes_a_job_with_its_headers(bridged: Bridged) -> None:
    queue = bridged.broker.name("default.crm")
    route = await bridged.route(queue)
    await bridged.broker.publish(queue, json.dumps(CHANGE).encode(), **change("crm-1"))
    await eventually(lambda: _has_jobs(bridged, 1), what="the job")
    [job] = await bridged.jobs()
    assert job.payload == CHANGE
    assert (job.message_id, job.content_type, job.content_encoding) == (
        "crm-1",
        "application/json",
        "utf-8",
    )
    await eventually(lambda: _counted(bridged, route.id, accepted=1), what="the count")
    assert await bridged.broker.ready(queue) == 0


async def test_a_known_message_id_is_acked_once_and_counted_a_duplicate(
    bridged: Bridged,
) -> None:
    queue = bridged.broker.name("default.crm")
    route = await bridged.route(queue)
    await bridged.broker.publish(queue, json.dumps(CHANGE).encode(), **change("crm-7"))
    await eventually(lambda: _has_jobs(bridged, 1), what="the first job")
    again = {"contact_id": 42, "changed": {"phone": "changed twice?"}}
    await bridged.broker.publish(queue, json.dumps(again).encode(), **change("crm-7"))
    await eventually(lambda: _counted(bridged, route.id, duplicates=1), what="the duplicate")
    [job] = await bridged.jobs()
    assert job.payload == CHANGE
    counts = await bridged.counts(route.id)
    assert (counts.received, counts.accepted, counts.duplicates) == (2, 1, 1)
    assert await bridged.broker.ready(queue) == 0


async def test_refused_messages_are_dead_lettered_with_the_reason_and_consuming_goes_on(
    bridged: Bridged,
) -> None:
    broker = bridged.broker
    queue = broker.name("default.crm")
    route = await bridged.route(queue)
    dead = await broker.queue(broker.name("test.dead-seen"))
    await dead.bind(bridged.dead_letters)
    await broker.publish(queue, b"{}", message_id="no-type", headers={"origin": "crm"})
    await broker.publish(queue, b"<a/>", content_type="application/xml", message_id="xml")
    await broker.publish(queue, b"{oops", content_type="application/json", message_id="bad")
    await broker.publish(queue, json.dumps(CHANGE).encode(), **change("good"))
    await eventually(lambda: _has_jobs(bridged, 1), what="the good message's job")
    await eventually(lambda: _counted(bridged, route.id, dead_lettered=3), what="dead letters")
    letters = [await _next(dead) for _ in range(3)]
    reasons = {m.message_id: m.headers["x-conveyor-reason"] for m in letters}
    assert "content_type is required" in str(reasons["no-type"])
    assert "'application/xml' is not accepted" in str(reasons["xml"])
    assert "body is not valid JSON" in str(reasons["bad"])
    first = next(m for m in letters if m.message_id == "no-type")
    assert first.body == b"{}"
    assert first.headers["origin"] == "crm"
    assert first.headers["x-conveyor-queue"] == queue
    assert first.headers["x-conveyor-tenant"] == "default"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    counts = await bridged.counts(route.id)
    assert counts.last_error in reasons.values()
    assert [j.message_id for j in await bridged.jobs()] == ["good"]
    assert await broker.ready(queue) == 0


async def test_a_message_is_acked_only_after_its_job_is_committed(bridged: Bridged) -> None:
    queue = bridged.broker.name("default.crm")
    route = await bridged.route(queue)
    assert bridged.server.amqp is not None
    context = bridged.server.amqp.ingress.context
    working = context.jobs_for
    context.retry_pause = 0.05
    gate = asyncio.Event()
    context.jobs_for = lambda tenant: FailingJobs(bridged.server.store, tenant).held_by(gate)
    await bridged.broker.publish(queue, json.dumps(CHANGE).encode(), **change("crm-9"))
    await eventually(lambda: _in_hand(bridged, route.id), what="the message in hand")
    assert await _unacked(queue) == 1  # delivered, enqueue blocked: not acked
    assert await bridged.jobs() == []
    gate.set()
    await eventually(lambda: _failed_at_least(bridged, route.id, 3), what="failed attempts")
    assert await bridged.jobs() == []
    counts = await bridged.counts(route.id)
    assert counts.accepted == 0
    assert counts.last_error == "the store is unavailable"
    context.jobs_for = working
    await eventually(lambda: _has_jobs(bridged, 1), what="the job after recovery")
    await eventually(lambda: _counted(bridged, route.id, accepted=1), what="the count")
    assert [j.message_id for j in await bridged.jobs()] == ["crm-9"]
    assert await bridged.broker.ready(queue) == 0


async def test_routes_changed_on_another_node_are_seen_within_the_interval(
    bridged: Bridged,
) -> None:
    """Changed in the database, without waking this node: it reads routes every
    ``amqp_interval``; a disabled route's messages wait in RabbitMQ."""
    queue = bridged.broker.name("default.crm")
    route = await bridged.route(queue)
    assert bridged.server.amqp is not None
    ingress = bridged.server.amqp.ingress
    consumer = ingress.consumers[route.id]
    disabled = replace(route.spec, enabled=False)
    await amqp_for(bridged.server.store).update("default", route.id, disabled, bridged.server.now())

    async def stopped() -> bool:
        # Out of the list first, then its channel closes: a message published before
        # that could still reach it.
        return route.id not in ingress.consumers and consumer.closed

    await eventually(stopped, what="the consumer to stop")
    await bridged.broker.publish(queue, json.dumps(CHANGE).encode(), **change("later"))
    await eventually(lambda: _ready(bridged, queue, 1), what="the message to wait")
    assert await bridged.jobs() == []
    await amqp_for(bridged.server.store).update(
        "default", route.id, route.spec, bridged.server.now()
    )
    await eventually(lambda: _has_jobs(bridged, 1), what="the job once enabled again")


class FailingJobs(JobService):
    """The tenant's job service while its database is away (answering only once
    ``gate`` is set, if one is given)."""

    gate: asyncio.Event | None = None

    def held_by(self, gate: asyncio.Event) -> FailingJobs:
        """This service, its ``enqueue`` held until ``gate`` is set."""
        self.gate = gate
        return self

    async def enqueue(self, task: str, payload: Any = None, options: Any = None) -> Job:
        """Fail as a store that cannot be reached does."""
        if self.gate is not None:
            await self.gate.wait()
        raise StoreUnavailable("the database is away")


async def _in_hand(bridged: Bridged, route_id: int) -> bool:
    assert bridged.server.amqp is not None
    consumer = bridged.server.amqp.ingress.consumers.get(route_id)
    return consumer is not None and bool(consumer._handling)


async def _unacked(queue: str) -> int:
    """Messages of ``queue`` delivered and not acked, as the broker counts them."""
    listed = await asyncio.to_thread(
        subprocess.run,
        [
            "rabbitmqctl",
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_unacknowledged",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    for line in listed.stdout.splitlines():
        name, _, count = line.rpartition("\t")
        if name == queue:
            return int(count)
    raise AssertionError(f"no queue {queue!r} in {listed.stdout!r}")


async def test_stop_cancels_a_message_in_hand_after_the_grace(bridged: Bridged) -> None:
    queue = bridged.broker.name("default.crm")
    route = await bridged.route(queue)
    assert bridged.server.amqp is not None
    ingress = bridged.server.amqp.ingress
    ingress.context.grace = 0.2
    ingress.context.jobs_for = lambda tenant: FailingJobs(bridged.server.store, tenant).held_by(
        asyncio.Event()
    )
    await bridged.broker.publish(queue, json.dumps(CHANGE).encode(), **change("crm-held"))
    await eventually(lambda: _in_hand(bridged, route.id), what="the message in hand")
    consumer = ingress.consumers[route.id]
    started = time.monotonic()
    await asyncio.wait_for(ingress.stop(), 5)
    assert time.monotonic() - started < 3
    assert consumer._handling == set()
    await eventually(lambda: _ready(bridged, queue, 1), what="the message back on the queue")


async def test_a_consumer_the_broker_cancels_is_started_again(bridged: Bridged) -> None:
    """Deleting a consumed queue cancels its consumer; the ingress declares it again."""
    queue = bridged.broker.name("default.crm")
    route = await bridged.route(queue)
    assert bridged.server.amqp is not None
    ingress = bridged.server.amqp.ingress
    first = ingress.consumers[route.id]
    await bridged.broker.channel.queue_delete(queue)

    async def replaced() -> bool:
        consumer = ingress.consumers.get(route.id)
        return consumer is not None and consumer is not first and not consumer.closed

    await eventually(replaced, what="a new consumer")
    await bridged.broker.publish(queue, json.dumps(CHANGE).encode(), **change("after-delete"))
    await eventually(lambda: _has_jobs(bridged, 1), what="the job")


async def test_a_dead_letter_no_queue_takes_is_not_acked_away(bridged: Bridged) -> None:
    broker = bridged.broker
    assert bridged.server.amqp is not None
    ingress = bridged.server.amqp.ingress
    await asyncio.wait_for(ingress.connected.wait(), 15)  # the catch-all queue is declared
    await broker.channel.queue_delete(dead_letter_queue(bridged.dead_letters))
    queue = broker.name("default.crm")
    route = await bridged.route(queue)
    ingress.context.retry_pause = 0.05
    await broker.publish(queue, b"<a/>", content_type="application/xml", message_id="xml")
    await eventually(lambda: _failed_at_least(bridged, route.id, 2), what="failed dead letters")
    assert (await bridged.counts(route.id)).dead_lettered == 0
    dead = await broker.queue(broker.name("test.dead-seen"))
    await dead.bind(bridged.dead_letters)
    await eventually(lambda: _counted(bridged, route.id, dead_lettered=1), what="the dead letter")
    assert (await _next(dead)).message_id == "xml"


async def _next(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    message = None

    async def arrived() -> bool:
        nonlocal message
        message = await queue.get(fail=False, no_ack=True)
        return message is not None

    await eventually(arrived, what="a dead letter")
    assert message is not None
    return message


async def _has_jobs(bridged: Bridged, count: int) -> bool:
    return len(await bridged.jobs()) >= count


async def _ready(bridged: Bridged, queue: str, count: int) -> bool:
    return await bridged.broker.ready(queue) == count


async def _counted(bridged: Bridged, route_id: int, **expected: int) -> bool:
    counts = await bridged.counts(route_id)
    return all(getattr(counts, name) == value for name, value in expected.items())


async def _failed_at_least(bridged: Bridged, route_id: int, count: int) -> bool:
    return bool((await bridged.counts(route_id)).failed >= count)


async def test_a_queue_declared_otherwise_fails_its_route_alone(bridged: Bridged) -> None:
    broker = bridged.broker
    odd = broker.name("default.odd")
    broker.queues.append(odd)
    await broker.channel.declare_queue(odd, durable=True, arguments={"x-max-length": 10})
    store = amqp_for(bridged.server.store)
    failing = await store.add("default", RouteSpec(odd, "crm.contact.update"), bridged.server.now())
    queue = broker.name("default.crm")
    await bridged.route(queue)

    async def noted() -> bool:
        return "PRECONDITION_FAILED" in (await bridged.counts(failing.id)).last_error

    await eventually(noted, what="the route's error")
    await broker.publish(queue, json.dumps(CHANGE).encode(), **change("still-fine"))
    await eventually(lambda: _has_jobs(bridged, 1), what="the other route's job")


class BrokenJobs(JobService):
    """A job service with a bug in it."""

    async def enqueue(self, task: str, payload: Any = None, options: Any = None) -> Job:
        """Fail as no retry will cure."""
        raise RuntimeError("a bug")


async def test_a_message_failing_unexpectedly_is_dead_lettered_after_five_attempts(
    bridged: Bridged,
) -> None:
    broker = bridged.broker
    queue = broker.name("default.crm")
    route = await bridged.route(queue)
    dead = await broker.queue(broker.name("test.dead-seen"))
    await dead.bind(bridged.dead_letters)
    assert bridged.server.amqp is not None
    context = bridged.server.amqp.ingress.context
    context.retry_pause = 0.05
    context.jobs_for = lambda tenant: BrokenJobs(bridged.server.store, tenant)
    await broker.publish(queue, json.dumps(CHANGE).encode(), **change("crm-bug"))
    await eventually(lambda: _counted(bridged, route.id, dead_lettered=1), what="the dead letter")
    assert (await bridged.counts(route.id)).failed == 4
    letter = await _next(dead)
    assert "gave up after 5 attempts" in str(letter.headers["x-conveyor-reason"])
    assert await broker.ready(queue) == 0
