"""One route's consumer: its own channel on the ingress connection, consuming one
RabbitMQ queue into jobs of the route's task.

Per message: :func:`~conveyor.amqp.messages.read_message` decides; an accepted message
is enqueued through the tenant's job service and acked only after the job is committed
(a known ``message_id`` finds the first job: acked, counted as a duplicate); a refused
one is published to the dead-letter exchange (confirmed, ``mandatory``: a dead letter
no queue takes is not acked away) and then acked; a passing failure (the database is
away) puts it back on the queue after a pause, never acks it. Any other failure is
retried too, but only ``max_attempts`` times per ``(route, message_id)``, counted in
the database (on all nodes together); then the message is dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

from conveyor.amqp.messages import Accepted, Refused, read_message
from conveyor.builtins.catalog import SHELL_TASK
from conveyor.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
)
from conveyor.store.amqp_protocol import AmqpRoute, AmqpStore, Outcome

if TYPE_CHECKING:
    from aio_pika.abc import AbstractConnection

    from conveyor.services.jobs import JobService

log = logging.getLogger("conveyor.amqp.ingress")

REFUSED_BY_CONVEYOR = (InvalidInput, NotFound, PermissionDenied)
"""Enqueue errors no redelivery can cure: the message goes to the dead-letter exchange.
(A ``Conflict`` may pass: a redelivered message racing its first delivery's enqueue.)"""
REASON_HEADER = "x-conveyor-reason"
QUEUE_HEADER = "x-conveyor-queue"
TENANT_HEADER = "x-conveyor-tenant"
ACK_SECONDS = 10.0
"""How long an ack may take (on a connection that just died it would wait for ever)."""
SHELL_REFUSED = "a RabbitMQ route cannot enqueue shell jobs"


@dataclass(slots=True)
class IngressContext:
    """What every route's consumer uses."""

    store: AmqpStore
    jobs_for: Callable[[str], JobService]
    clock: Callable[[], datetime]
    dead_letter_exchange: str
    prefetch: int
    retry_pause: float = 1.0
    """Seconds a message waits before it goes back on the queue after a passing failure."""
    max_attempts: int = 5
    """Failures other than an unavailable store before a message is dead-lettered."""
    grace: float = 10.0
    """Seconds the messages in hand may take to finish when consuming stops."""


class RouteConsumer:
    """Consumes one route's queue on a channel of its own (a broken queue declaration
    closes that channel only)."""

    def __init__(self, route: AmqpRoute, context: IngressContext) -> None:
        self.route = route
        self.context = context
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._dead_letters: AbstractExchange | None = None
        self._tag: str | None = None
        self._handling: set[asyncio.Task[Any]] = set()

    @property
    def closed(self) -> bool:
        """Whether the channel is gone (the broker closed it, or it never opened)."""
        return self._channel is None or self._channel.is_closed

    async def stopped(self) -> bool:
        """Whether this consumer no longer consumes: its channel is gone, or the broker
        cancelled it (its queue was deleted; the client library drops the tag then)."""
        if self.closed or self._channel is None or self._tag is None:
            return True
        try:
            underlay = await self._channel.get_underlay_channel()
        except Exception:
            return True
        consumers = getattr(underlay, "consumers", None)  # aiormq's Channel keeps them
        return consumers is not None and self._tag not in consumers

    async def open(self, connection: AbstractConnection) -> None:
        """Open the channel, declare the queue (durable, no arguments) and consume."""
        self._channel = channel = await connection.channel(on_return_raises=True)
        await channel.set_qos(prefetch_count=self.context.prefetch)
        self._dead_letters = await channel.declare_exchange(
            self.context.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        self._queue = await channel.declare_queue(self.route.spec.queue, durable=True)
        self._tag = await self._queue.consume(self._on_message, no_ack=False)
        log.info(
            "consuming RabbitMQ queue %r for tenant %s (route %d)",
            self.route.spec.queue,
            self.route.tenant_id,
            self.route.id,
        )

    async def close(self) -> None:
        """Stop consuming, give the messages in hand ``grace`` seconds to finish (the
        rest are cancelled, unacked: the broker delivers them again), close the channel."""
        if self._queue is not None and self._tag is not None and not self.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._tag), ACK_SECONDS)
        if self._handling:
            await asyncio.wait(set(self._handling), timeout=self.context.grace)
        await self._cancel_handling()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        self._channel = self._queue = None

    async def _cancel_handling(self) -> None:
        left = {task for task in self._handling if not task.done()}
        for task in left:
            task.cancel()
        if left:
            await asyncio.gather(*left, return_exceptions=True)
            log.warning("route %d: %d message(s) left unacked at stop", self.route.id, len(left))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """Handle a delivery in a task of our own: the client library cancels its own
        tasks when the connection drops, and a committed job must still be counted
        (:meth:`close` gives it ``grace`` seconds, then cancels it)."""
        task = asyncio.create_task(self._handle_logged(message))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)
        await asyncio.shield(task)

    async def _handle_logged(self, message: AbstractIncomingMessage) -> None:
        try:
            await self.handle(message)
        except Exception as exc:
            log.warning("route %d: a message was not acked: %r", self.route.id, exc)

    async def handle(self, message: AbstractIncomingMessage) -> Outcome:
        """Turn one message into a job, a duplicate, a dead letter or a retry."""
        try:
            decision = read_message(
                message.body, message.content_type, message.content_encoding, message.message_id
            )
        except Exception as exc:
            log.exception("route %d: a message could not be read", self.route.id)
            decision = Refused(f"the message could not be read ({type(exc).__name__})")
        if isinstance(decision, Refused):
            return await self._dead_letter(message, decision.reason)
        try:
            duplicate = await self._enqueue(decision)
        except REFUSED_BY_CONVEYOR as exc:
            return await self._dead_letter(message, exc.message)
        except StoreUnavailable as exc:
            log.warning("route %d: %s", self.route.id, exc.message)
            return await self._retry(message, "the store is unavailable")
        except Conflict as exc:
            return await self._retry_or_give_up(message, decision.message_id, exc.message)
        except Exception as exc:
            log.exception("route %d: enqueue failed", self.route.id)
            error = f"enqueue failed ({type(exc).__name__}, see the server log)"
            return await self._retry_or_give_up(message, decision.message_id, error)
        outcome = Outcome.DUPLICATE if duplicate else Outcome.ACCEPTED
        # committed: if the ack is lost, it comes back a duplicate
        await self._count(outcome, message_id=decision.message_id)
        await _ack(message)
        return outcome

    async def _retry_or_give_up(
        self, message: AbstractIncomingMessage, message_id: str, error: str
    ) -> Outcome:
        """Retry, unless this message failed ``max_attempts`` times: then dead-letter it.
        (If the count cannot be written either, it is retried all the same.)"""
        try:
            attempts = await self.context.store.failed_attempt(
                self.route.id, message_id, self.context.clock()
            )
        except Exception as exc:
            log.warning("route %d: cannot count a failed attempt: %s", self.route.id, exc)
            return await self._retry(message, error)
        if attempts >= self.context.max_attempts:
            return await self._dead_letter(message, f"{error}; gave up after {attempts} attempts")
        return await self._retry(message, error)

    async def _enqueue(self, accepted: Accepted) -> bool:
        """Enqueue the job; ``True`` if a job with this ``message_id`` existed already."""
        route = self.route
        if route.spec.task == SHELL_TASK:
            raise InvalidInput("task", SHELL_REFUSED)
        if await self.context.store.has_message(route.tenant_id, accepted.message_id):
            return True
        options: dict[str, Any] = {
            "message_id": accepted.message_id,
            "content_type": accepted.content_type,
            "content_encoding": accepted.content_encoding,
        }
        if route.spec.job_queue is not None:
            options["queue"] = route.spec.job_queue
        if route.spec.priority is not None:
            options["priority"] = route.spec.priority
        before = self.context.clock()
        jobs = self.context.jobs_for(route.tenant_id)
        job = await jobs.enqueue(route.spec.task, accepted.payload, options)
        return job.created_at < before

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> Outcome:
        """Publish the message to the dead-letter exchange with the reason (confirmed),
        then ack it; if that publish fails, put it back on the queue."""
        try:
            exchange = self._dead_letters
            if exchange is None:
                raise RuntimeError("the channel is closed")
            await exchange.publish(
                self._dead_letter_of(message, reason), self.route.spec.queue, mandatory=True
            )
        except Exception as exc:
            log.warning("route %d: dead-lettering failed: %r", self.route.id, exc)
            return await self._retry(message, f"dead-lettering failed ({reason})")
        log.info("route %d: message dead-lettered: %s", self.route.id, reason)
        await self._count(Outcome.DEAD_LETTERED, reason, message.message_id)
        await _ack(message)
        return Outcome.DEAD_LETTERED

    def _dead_letter_of(self, message: AbstractIncomingMessage, reason: str) -> aio_pika.Message:
        headers = dict(message.headers or {})
        headers[REASON_HEADER] = reason
        headers[QUEUE_HEADER] = self.route.spec.queue
        headers[TENANT_HEADER] = self.route.tenant_id
        return aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            priority=message.priority,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            message_id=message.message_id,
            timestamp=message.timestamp,
            type=message.type,
            app_id=message.app_id,
        )

    async def _retry(self, message: AbstractIncomingMessage, error: str) -> Outcome:
        """Put the message back on the queue after a pause; ``error`` (shown to the
        tenant's owners as the route's last error) says no more than what failed."""
        log.warning("route %d: %s; the message goes back on the queue", self.route.id, error)
        await asyncio.sleep(self.context.retry_pause)
        with contextlib.suppress(Exception):
            await message.nack(requeue=True)
        await self._count(Outcome.FAILED, error)
        return Outcome.FAILED

    async def _count(
        self, outcome: Outcome, error: str = "", message_id: str | None = None
    ) -> None:
        """Count the outcome; a settled message's failed attempts go with it."""
        try:
            await self.context.store.count(
                self.route.id, outcome, error, self.context.clock(), message_id
            )
        except Exception as exc:
            log.warning("route %d: cannot count a %s message: %s", self.route.id, outcome, exc)


async def _ack(message: AbstractIncomingMessage) -> None:
    await asyncio.wait_for(message.ack(), ACK_SECONDS)
