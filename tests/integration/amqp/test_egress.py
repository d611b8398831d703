"""The egress publisher against a real RabbitMQ: a job's events arrive in order on a
queue bound to the topic exchange, persistent, as JSON, with the event id as
``message_id``; a broker that refuses keeps the cursor where it was."""

from __future__ import annotations

import json

import aio_pika
import pytest

from conveyor.domain.webhooks import event_body
from conveyor.store import amqp_for
from conveyor.store.amqp_protocol import EGRESS_CURSOR
from tests.integration.amqp.conftest import Bridged, eventually

pytestmark = pytest.mark.anyio


async def _egress_started(bridged: Bridged) -> bool:
    return await amqp_for(bridged.server.store).read_cursor(EGRESS_CURSOR) is not None


async def test_a_jobs_events_arrive_in_order_on_a_bound_queue(bridged: Bridged) -> None:
    broker = bridged.broker
    await eventually(lambda: _egress_started(bridged), what="the egress cursor")
    await broker.channel.declare_exchange(bridged.events, aio_pika.ExchangeType.TOPIC, durable=True)
    seen = await broker.queue(broker.name("test.events-seen"))
    await seen.bind(bridged.events, "default.job.*")
    jobs = bridged.server._system_jobs("default")
    job = await jobs.enqueue("report.build", {"month": "2026-11"})
    await jobs.cancel(job.id, "not needed")
    events = await bridged.server.store.list_job_events("default", job.id)
    assert len(events) >= 2
    received = []
    for _ in events:
        message = None

        async def arrived() -> bool:
            nonlocal message
            message = await seen.get(fail=False, no_ack=True)
            return message is not None

        await eventually(arrived, what="an event message")
        assert message is not None
        received.append(message)
    assert [m.message_id for m in received] == [str(e.id) for e in events]
    assert [m.routing_key for m in received] == [f"default.{e.type}" for e in events]
    assert [m.body.decode() for m in received] == [event_body(e) for e in events]
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in received)
    assert all(m.content_type == "application/json" for m in received)
    assert json.loads(received[-1].body)["type"] == "job.cancelled"


async def test_events_of_another_tenant_do_not_match_the_tenants_binding(
    bridged: Bridged,
) -> None:
    broker = bridged.broker
    await eventually(lambda: _egress_started(bridged), what="the egress cursor")
    await broker.channel.declare_exchange(bridged.events, aio_pika.ExchangeType.TOPIC, durable=True)
    seen = await broker.queue(broker.name("test.acme-only"))
    await seen.bind(bridged.events, "acme.#")
    everything = await broker.queue(broker.name("test.everything"))
    await everything.bind(bridged.events, "#")
    await bridged.server._system_jobs("default").enqueue("report.build", {})

    async def published() -> bool:
        return await broker.ready(everything.name) > 0

    await eventually(published, what="the default tenant's event")
    assert await broker.ready(seen.name) == 0
