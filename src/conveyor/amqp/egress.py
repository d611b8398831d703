"""The egress publisher: every tenant's events, in order, to one topic exchange, on the
node that leads (a lock of its own).

Each round reads the events after the durable cursor (``Store.list_events``: committed
events, a late commit never skipped), publishes them all (persistent, ``message_id``
the event id, routing key ``<tenant>.<event type>``), waits for every publisher
confirm, and only then moves the cursor. A broker away keeps the cursor where it is;
the round is tried again after an exponential backoff with jitter; so is a batch whose
confirms do not all arrive within ``PUBLISH_TIMEOUT`` (the broker's flow control may
hold them back for ever), so ``serve`` never hangs on stop. Delivery is
at-least-once: a crash between the confirms and the cursor's move sends those events
again (with the same ``message_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange

from conveyor.amqp.connection import describe_error, is_lost, reconnect_delay, safe_address
from conveyor.domain.events import Event
from conveyor.domain.webhooks import event_body
from conveyor.loops.base import Loop
from conveyor.store.amqp_protocol import EGRESS_CURSOR, AmqpStore
from conveyor.store.leadership import Leadership, leadership_for
from conveyor.store.protocol import Store

log = logging.getLogger("conveyor.amqp.egress")

ROLE = "amqp-egress"
EVENT_BATCH = 200
CONNECT_TIMEOUT = 10.0
PUBLISH_TIMEOUT = 10.0
"""Seconds a batch's publishes and their confirms may take."""


def egress_leadership(database_url: str) -> Leadership:
    """The egress publisher's leadership: an advisory lock of its own, or a lock file."""
    return leadership_for(database_url, ROLE)


def routing_key(event: Event) -> str:
    """``<tenant>.<event type>``, e.g. ``acme.job.succeeded``."""
    return f"{event.tenant_id}.{event.type}"


def event_message(event: Event) -> aio_pika.Message:
    """The message of one event: the webhook body, persistent, ``message_id`` its id."""
    return aio_pika.Message(
        event_body(event).encode(),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event.id),
        timestamp=event.created_at,
        type=event.type,
        app_id="conveyor",
        headers={"x-conveyor-tenant": event.tenant_id},
    )


async def publish_confirmed(
    exchange: AbstractExchange, events: list[Event], seconds: float = PUBLISH_TIMEOUT
) -> None:
    """Publish ``events`` and wait for every confirm; ``TimeoutError`` after ``seconds``
    (the cursor stays where it is and the batch is sent again)."""
    publishes = (exchange.publish(event_message(e), routing_key(e)) for e in events)
    await asyncio.wait_for(asyncio.gather(*publishes), seconds)


@dataclass(frozen=True, slots=True)
class EgressTarget:
    """Where events go: the broker and the topic exchange."""

    url: str
    exchange: str

    def __repr__(self) -> str:
        return f"EgressTarget({safe_address(self.url)}, {self.exchange!r})"


class AmqpEgress(Loop):
    """Publishes new events to the topic exchange while this node leads."""

    name = "amqp-egress"

    def __init__(
        self,
        target: EgressTarget,
        store: Store,
        amqp: AmqpStore,
        leadership: Leadership,
        clock: Callable[[], datetime],
        interval: float = 1.0,
        reconnect_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(interval)
        self.target = target
        self.store = store
        self.amqp = amqp
        self.leadership = leadership
        self.clock = clock
        self.reconnect_max = reconnect_max
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.failures = 0
        self.publish_timeout = PUBLISH_TIMEOUT
        self.leading = False
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def run_once(self) -> int:
        """Publish the events after the cursor (if this node leads); return how many."""
        self.leading = await self.leadership.hold()
        if not self.leading:
            await self._disconnect()
            return 0
        try:
            sent = await self.publish_new()
        except Exception as exc:
            self.failures += 1
            log.warning(
                "publishing events to RabbitMQ failed: %s", describe_error(exc, self.target.url)
            )
            await self._disconnect()
            return 0
        self.failures = 0
        return sent

    async def publish_new(self) -> int:
        """Publish every event after the cursor, a batch at a time, each batch confirmed
        before the cursor moves past it."""
        cursor = await self.amqp.cursor(EGRESS_CURSOR, self.clock())
        sent = 0
        while True:
            events = await self.store.list_events(None, cursor, EVENT_BATCH)
            if not events:
                return sent
            exchange = await self._exchange_now()
            await publish_confirmed(exchange, events, self.publish_timeout)
            last = events[-1].id
            if not await self.amqp.advance_cursor(EGRESS_CURSOR, cursor, last, self.clock()):
                return sent  # another node moved it on
            cursor = last
            sent += len(events)
            if len(events) < EVENT_BATCH:
                return sent

    async def seconds_to_wait(self) -> float:
        """The interval; after failures in a row, a growing backoff."""
        if self.failures:
            return reconnect_delay(self.failures - 1, self.reconnect_max, self.rng)
        return self.interval

    async def stop(self) -> None:
        """Stop looping, close the connection, give the lead up."""
        await super().stop()
        await self._disconnect()
        await self.leadership.release()

    async def _exchange_now(self) -> AbstractExchange:
        if self._connection is not None and is_lost(self._connection):
            await self._disconnect()
        if self._exchange is None:
            connection = await aio_pika.connect(self.target.url, timeout=CONNECT_TIMEOUT)
            try:
                channel = await connection.channel(publisher_confirms=True)
                self._exchange = await channel.declare_exchange(
                    self.target.exchange, aio_pika.ExchangeType.TOPIC, durable=True
                )
            except BaseException:
                await connection.close()
                raise
            self._connection = connection
            log.info(
                "publishing events to %r at %s", self.target.exchange, safe_address(self.target.url)
            )
        return self._exchange

    async def _disconnect(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
