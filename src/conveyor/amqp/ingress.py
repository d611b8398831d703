"""The ingress consumer: every enabled route's RabbitMQ queue, consumed into jobs.

It runs on every ``serve`` node (RabbitMQ shares a queue's messages between competing
consumers; the ``message_id`` makes a redelivered message find its first job). It
manages its connection itself rather than trusting a self-healing one: a lost
connection ends the session, and the next one opens after an exponential backoff
with jitter, declares every route's queue again and consumes it. Every ``refresh``
seconds (or at once after a change through this node) it reads the routes again:
new ones start, disabled or deleted ones stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractConnection

from conveyor.amqp.connection import (
    describe_error,
    is_lost,
    reconnect_delay,
    safe_address,
    wait_any,
)
from conveyor.amqp.consumer import IngressContext, RouteConsumer
from conveyor.amqp.routes import dead_letter_queue
from conveyor.store.amqp_protocol import AmqpRoute

log = logging.getLogger("conveyor.amqp.ingress")

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class IngressTiming:
    """How often the consumer looks at its routes and how long it waits to reconnect."""

    refresh: float = 2.0
    reconnect_max: float = 30.0


class AmqpIngress:
    """Consumes every enabled route's queue. ``start()``, then ``await stop()``."""

    def __init__(
        self,
        url: str,
        context: IngressContext,
        timing: IngressTiming | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._url = url
        self.context = context
        self.timing = timing or IngressTiming()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.consumers: dict[int, RouteConsumer] = {}
        self.connected = asyncio.Event()
        """Set while a session is up and every route it could open is consumed."""
        self.sessions = 0
        """Sessions opened so far (a reconnect makes a new one)."""
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failed_routes: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"AmqpIngress({safe_address(self._url)})"

    def start(self) -> None:
        """Begin consuming in the background."""
        self._stop.clear()
        self._task = asyncio.create_task(self._forever(), name="conveyor-amqp-ingress")

    def wake(self) -> None:
        """Read the routes again now (one was added, changed or deleted)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop consuming, finish the messages in hand, close the connection."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _forever(self) -> None:
        failures = 0
        while not self._stop.is_set():
            sessions = self.sessions
            try:
                await self._session()
            except Exception as exc:
                error = describe_error(exc, self._url)
                log.warning("RabbitMQ at %s: %s", safe_address(self._url), error)
            if self.sessions != sessions:
                failures = 0  # it was connected: start the backoff over
            if self._stop.is_set():
                return
            delay = reconnect_delay(failures, self.timing.reconnect_max, self.rng)
            failures += 1
            log.info("reconnecting to RabbitMQ in %.1f s", delay)
            await wait_any(delay, self._stop)

    async def _session(self) -> None:
        """One connection: consume until it is lost or the consumer stops."""
        connection = await aio_pika.connect(self._url, timeout=CONNECT_TIMEOUT)
        self.sessions += 1
        log.info("connected to RabbitMQ at %s", safe_address(self._url))
        try:
            await self._declare_dead_letters(connection)
            while not self._stop.is_set() and not is_lost(connection):
                await self._sync(connection)
                self._wake.clear()
                await wait_any(self.timing.refresh, self._stop, self._wake)
        finally:
            self.connected.clear()
            await self._close_all()
            with contextlib.suppress(Exception):
                await connection.close()
        if not self._stop.is_set():
            raise ConnectionError("the connection was lost")

    async def _declare_dead_letters(self, connection: AbstractConnection) -> None:
        """The dead-letter exchange (fanout) and the durable catch-all queue bound to it
        (``_`` and the exchange's name: no tenant may route it), so dead letters are
        kept even before anyone binds a queue of their own."""
        name = self.context.dead_letter_exchange
        async with connection.channel() as channel:
            exchange = await channel.declare_exchange(
                name, aio_pika.ExchangeType.FANOUT, durable=True
            )
            queue = await channel.declare_queue(dead_letter_queue(name), durable=True)
            await queue.bind(exchange)

    async def _sync(self, connection: AbstractConnection) -> None:
        """Start the routes that are new, stop the ones gone, disabled or moved."""
        try:
            routes = {route.id: route for route in await self.context.store.enabled()}
        except Exception as exc:
            log.warning("cannot read the RabbitMQ routes: %s", exc)
            return
        for route_id, consumer in list(self.consumers.items()):
            route = routes.get(route_id)
            if (
                route is None
                or route.spec.queue != consumer.route.spec.queue
                or await consumer.stopped()
            ):
                del self.consumers[route_id]
                await consumer.close()
            else:
                consumer.route = route
        for route_id, route in routes.items():
            if route_id not in self.consumers:
                await self._open(connection, route)
        self.connected.set()

    async def _open(self, connection: AbstractConnection, route: AmqpRoute) -> None:
        consumer = RouteConsumer(route, self.context)
        try:
            await consumer.open(connection)
        except Exception as exc:
            await consumer.close()
            error = str(exc) or type(exc).__name__
            if self._failed_routes.get(route.id) != error:
                log.warning("route %d: cannot consume %r: %s", route.id, route.spec.queue, error)
                with contextlib.suppress(Exception):
                    await self.context.store.note_error(route.id, f"cannot consume: {error}")
            self._failed_routes[route.id] = error
            return
        self._failed_routes.pop(route.id, None)
        self.consumers[route.id] = consumer

    async def _close_all(self) -> None:
        consumers, self.consumers = list(self.consumers.values()), {}
        await asyncio.gather(*(consumer.close() for consumer in consumers))
