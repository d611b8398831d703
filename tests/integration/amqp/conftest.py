"""A real RabbitMQ (``CONVEYOR_TEST_AMQP_URL``, default guest on 127.0.0.1:5672) and a
started Server bridged to it, on both stores.

Every test names its queues and exchanges with a random suffix and deletes them at
the end. Unreachable RabbitMQ: the test is skipped locally, fails with ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection
from pydantic import SecretStr

from conveyor.amqp.routes import dead_letter_queue
from conveyor.domain.jobs import Job, JobFilter
from conveyor.server import Server
from conveyor.store import amqp_for
from conveyor.store.amqp_protocol import AmqpRoute, RouteCounts, RouteSpec
from tests.conftest import service_missing
from tests.integration.api.conftest import server_settings

AMQP_URL = os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
TENANT = "default"


async def eventually(
    check: Callable[[], Awaitable[bool]], seconds: float = 15.0, what: str = "condition"
) -> None:
    """Wait until ``check()`` is true, polling; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Broker:
    """A connection to the test RabbitMQ and the names this test made there."""

    connection: AbstractConnection
    channel: AbstractChannel
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def name(self, base: str) -> str:
        """A name unique to this test run."""
        return f"{base}.{self.suffix}"

    async def queue(self, name: str) -> aio_pika.abc.AbstractQueue:
        """Declare a durable queue (deleted at the end)."""
        self.queues.append(name)
        return await self.channel.declare_queue(name, durable=True)

    async def publish(self, queue: str, body: bytes, **properties: Any) -> None:
        """Publish a persistent message to ``queue`` (confirmed)."""
        properties.setdefault("delivery_mode", aio_pika.DeliveryMode.PERSISTENT)
        await self.channel.default_exchange.publish(aio_pika.Message(body, **properties), queue)

    async def ready(self, queue: str) -> int:
        """Messages ready in ``queue`` (neither delivered nor acked)."""
        declared = await self.channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        return int(count or 0)


async def connect(url: str = AMQP_URL, wait: float = 3.0) -> AbstractConnection:
    """A plain connection to the test broker."""
    return await aio_pika.connect(url, timeout=wait)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    """The test RabbitMQ; what the test declared is deleted afterwards."""
    try:
        connection = await connect()
    except Exception as exc:
        service_missing(f"RabbitMQ unreachable at 127.0.0.1:5672: {exc}")
    channel = await connection.channel()
    found = Broker(connection, channel)
    try:
        yield found
    finally:
        await _clean(found)


async def _clean(broker: Broker) -> None:
    with contextlib.suppress(Exception):
        await broker.connection.close()
    async with await connect(wait=10.0) as connection:
        channel = await connection.channel()
        for name in broker.queues:
            await channel.queue_delete(name)
        for name in broker.exchanges:
            await channel.exchange_delete(name)


@dataclass
class Bridged:
    """A started Server bridged to the test RabbitMQ."""

    server: Server
    broker: Broker
    dead_letters: str
    events: str

    async def route(self, queue: str, task: str = "crm.contact.update") -> AmqpRoute:
        """Route ``queue`` (declared first, as a publisher would) into ``task``."""
        await self.broker.queue(queue)
        store = amqp_for(self.server.store)
        route = await store.add(TENANT, RouteSpec(queue, task), self.server.now())
        assert self.server.amqp is not None
        self.server.amqp.routes_changed()
        await eventually(lambda: self._consuming(route.id), what=f"a consumer on {queue}")
        return route

    async def _consuming(self, route_id: int) -> bool:
        assert self.server.amqp is not None
        consumer = self.server.amqp.ingress.consumers.get(route_id)
        return consumer is not None and not consumer.closed

    async def jobs(self, task: str = "crm.contact.update") -> list[Job]:
        """The tenant's jobs of ``task``, oldest first."""
        found = await self.server.store.list_jobs(
            TENANT, JobFilter(task=task, limit=1000, newest_first=False)
        )
        return found

    async def counts(self, route_id: int) -> RouteCounts:
        """The route's counters now."""
        return (await amqp_for(self.server.store).get(TENANT, route_id)).counts


async def start_bridged(database_url: str, broker: Broker, **overrides: Any) -> Server:
    """A Server on ``database_url`` bridged to the broker with this test's names."""
    server = Server(
        server_settings(
            database_url,
            amqp_url=SecretStr(AMQP_URL),
            amqp_dead_letter_exchange=broker.name("test.dead-letter"),
            amqp_events_exchange=broker.name("test.events"),
            amqp_interval=0.2,
            amqp_reconnect_max_seconds=1.0,
            scheduler=False,
            webhooks=False,
            **overrides,
        )
    )
    await server.start()
    return server


@pytest.fixture
async def bridged(migrated_url: str, broker: Broker) -> AsyncIterator[Bridged]:
    """A started Server bridged to RabbitMQ, with no routes yet (both stores)."""
    await forget_amqp_rows(migrated_url)
    dead_letters = broker.name("test.dead-letter")
    events = broker.name("test.events")
    broker.exchanges += [dead_letters, events]
    broker.queues.append(dead_letter_queue(dead_letters))
    server = await start_bridged(migrated_url, broker)
    try:
        yield Bridged(server, broker, dead_letters, events)
    finally:
        await server.stop()


async def forget_amqp_rows(database_url: str) -> None:
    """The shared PostgreSQL test database keeps rows of earlier tests."""
    if database_url.startswith("postgresql://"):
        import psycopg

        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute("DELETE FROM amqp_routes")
            await conn.execute("DELETE FROM amqp_cursor")


def rabbitmqctl(*args: str) -> None:
    """Run ``rabbitmqctl`` (the broker runs on this machine)."""
    subprocess.run(
        ["rabbitmqctl", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )
