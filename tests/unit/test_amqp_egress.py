"""What the egress publisher sends for one event, and its lock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, cast

import aio_pika
import pytest

from conveyor.amqp.egress import event_message, publish_confirmed, routing_key
from conveyor.domain.events import Event
from conveyor.domain.webhooks import event_body
from conveyor.store.leadership import LOCKS

EVENT = Event(
    id=1234,
    tenant_id="acme",
    type="job.succeeded",
    job_id=77,
    data={"queue": "mail", "task": "send"},
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def test_an_event_goes_out_under_tenant_and_type() -> None:
    assert routing_key(EVENT) == "acme.job.succeeded"


def test_an_event_message_is_the_webhook_body_persistent_with_the_event_id() -> None:
    message = event_message(EVENT)
    assert message.body == event_body(EVENT).encode()
    assert message.message_id == "1234"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (message.content_type, message.content_encoding) == ("application/json", "utf-8")
    assert message.type == "job.succeeded"
    assert message.timestamp == EVENT.created_at


def test_every_singleton_loop_has_a_lock_of_its_own() -> None:
    assert set(LOCKS) == {"scheduler", "notifier", "mailer", "amqp-egress"}
    assert len(set(LOCKS.values())) == len(LOCKS)
    assert all(0 < lock < 2**63 for lock in LOCKS.values())


class StalledExchange:
    """An exchange under the broker's flow control: confirms never come."""

    def __init__(self) -> None:
        self.published = 0

    async def publish(self, message: aio_pika.Message, routing_key: str) -> None:
        self.published += 1
        await asyncio.Event().wait()


@pytest.mark.anyio
async def test_a_batch_whose_confirms_never_come_times_out() -> None:
    exchange = StalledExchange()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await publish_confirmed(cast(Any, exchange), [EVENT, EVENT], seconds=0.1)
    assert time.monotonic() - started < 2
    assert exchange.published == 2
