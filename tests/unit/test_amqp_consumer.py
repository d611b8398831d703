"""One route's consumer deciding each message's fate, on stand-ins for the broker's
message and exchange and for the job service: every message ends acked (a job, a
duplicate, a dead letter) or back on the queue, and a stopping consumer lets go."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aio_pika.exceptions import DeliveryError

from conveyor.amqp import consumer as consumer_module
from conveyor.amqp.consumer import (
    REASON_HEADER,
    IngressContext,
    RouteConsumer,
)
from conveyor.domain.errors import Conflict, StoreUnavailable
from conveyor.store.amqp_protocol import AmqpRoute, AmqpStore, Outcome, RouteCounts, RouteSpec

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Message:
    """What the consumer reads of a delivery, and what it does with it."""

    body: bytes = b'{"contact_id": 7}'
    content_type: str | None = "application/json"
    content_encoding: str | None = "utf-8"
    message_id: str | None = "crm-1"
    headers: dict[str, Any] = field(default_factory=dict)
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    timestamp: datetime | None = None
    type: str | None = None
    app_id: str | None = None
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("requeue" if requeue else "drop")


@dataclass
class Exchange:
    """The dead-letter exchange: keeps what is published, or fails as told."""

    published: list[Any] = field(default_factory=list)
    error: Exception | None = None

    async def publish(self, message: Any, routing_key: str, mandatory: bool = False) -> None:
        assert mandatory, "a dead letter must be published mandatory"
        if self.error is not None:
            raise self.error
        self.published.append(message)


@dataclass
class Counts:
    """The route counters and failed attempts the consumer writes (the real store's
    side of these is held to its contract in tests/contract/test_amqp_store.py)."""

    seen: list[tuple[Outcome, str]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    async def count(
        self,
        route_id: int,
        outcome: Outcome,
        error: str,
        now: datetime,
        message_id: str | None = None,
    ) -> None:
        self.seen.append((outcome, error))
        if message_id is not None and outcome is not Outcome.FAILED:
            self.attempts.pop(message_id, None)

    async def failed_attempt(self, route_id: int, message_id: str, now: datetime) -> int:
        self.attempts[message_id] = self.attempts.get(message_id, 0) + 1
        return self.attempts[message_id]

    async def has_message(self, tenant_id: str, message_id: str) -> bool:
        return False


@dataclass
class Jobs:
    """A job service whose ``enqueue`` raises ``error`` or waits on ``gate``."""

    error: Exception | None = None
    gate: asyncio.Event | None = None
    calls: int = 0

    async def enqueue(self, task: str, payload: Any = None, options: Any = None) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        raise AssertionError("not reached in these tests")


def make(jobs: Jobs, task: str = "crm.contact.update", **context: Any) -> RouteConsumer:
    route = AmqpRoute(1, "acme", RouteSpec("acme.crm", task), RouteCounts(), NOW, NOW)
    found = IngressContext(
        cast(AmqpStore, Counts()),
        lambda tenant: cast(Any, jobs),
        lambda: NOW,
        "conveyor.dead-letter",
        10,
        retry_pause=0.0,
        **context,
    )
    consumer = RouteConsumer(route, found)
    consumer._dead_letters = cast(Any, Exchange())
    return consumer


def letters(consumer: RouteConsumer) -> list[Any]:
    return cast(Exchange, consumer._dead_letters).published


async def handle(consumer: RouteConsumer, message: Message) -> Outcome:
    return await consumer.handle(cast(Any, message))


async def test_a_message_that_breaks_the_reader_is_dead_lettered_and_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(consumer_module, "read_message", broken)
    consumer, message = make(Jobs()), Message()
    assert await handle(consumer, message) == Outcome.DEAD_LETTERED
    assert message.settled == ["ack"]
    assert "RecursionError" in letters(consumer)[0].headers[REASON_HEADER]


@pytest.mark.parametrize("encoding", ["base64", "hex", "rot13", "zlib", "bz2"])
async def test_a_non_text_codec_is_dead_lettered(encoding: str) -> None:
    consumer, message = make(Jobs()), Message(body=b"e30=", content_encoding=encoding)
    assert await handle(consumer, message) == Outcome.DEAD_LETTERED
    assert message.settled == ["ack"]


async def test_a_route_to_the_shell_task_is_refused_at_enqueue_time() -> None:
    jobs = Jobs()
    consumer, message = make(jobs, task="shell"), Message()
    assert await handle(consumer, message) == Outcome.DEAD_LETTERED
    assert jobs.calls == 0
    assert "shell" in letters(consumer)[0].headers[REASON_HEADER]


async def test_a_conflict_while_the_first_delivery_enqueues_is_retried() -> None:
    consumer, message = make(Jobs(Conflict("message 'crm-1' is being enqueued"))), Message()
    assert await handle(consumer, message) == Outcome.FAILED
    assert message.settled == ["requeue"]
    assert letters(consumer) == []


async def test_an_unexpected_error_is_retried_then_dead_lettered_with_the_reason() -> None:
    consumer = make(Jobs(RuntimeError("boom")), max_attempts=3)
    outcomes = []
    for _ in range(3):
        message = Message()
        outcomes.append(await handle(consumer, message))
    assert outcomes == [Outcome.FAILED, Outcome.FAILED, Outcome.DEAD_LETTERED]
    assert message.settled == ["ack"]
    reason = letters(consumer)[0].headers[REASON_HEADER]
    assert "RuntimeError" in reason and "gave up after 3 attempts" in reason
    assert cast(Counts, consumer.context.store).attempts == {}


async def test_an_unavailable_store_is_retried_without_limit() -> None:
    consumer = make(Jobs(StoreUnavailable("the database is away")), max_attempts=2)
    for _ in range(6):
        message = Message()
        assert await handle(consumer, message) == Outcome.FAILED
        assert message.settled == ["requeue"]
    assert letters(consumer) == []


async def test_a_dead_letter_no_queue_takes_is_not_acked_away() -> None:
    consumer, message = make(Jobs()), Message(content_type="application/xml")
    cast(Exchange, consumer._dead_letters).error = DeliveryError(None, cast(Any, None))
    assert await handle(consumer, message) == Outcome.FAILED
    assert message.settled == ["requeue"]


async def test_closing_cancels_the_messages_still_in_hand_after_the_grace() -> None:
    jobs = Jobs(gate=asyncio.Event())
    consumer = make(jobs, grace=0.1)
    delivery = asyncio.create_task(consumer._on_message(cast(Any, Message())))
    while not jobs.calls:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await consumer.close()
    assert time.monotonic() - started < 2
    assert consumer._handling == set()
    with pytest.raises(asyncio.CancelledError):
        await delivery
