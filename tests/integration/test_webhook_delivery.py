"""Webhook delivery end to end: the Notifier on a real store (SQLite and PostgreSQL)
POSTs through the SSRF guard to a real receiver on 127.0.0.1, which checks every
signature with ``standardwebhooks``. The clock is the test's: retries come at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from conveyor.domain.accounts import Tenant, TenantStatus
from conveyor.domain.events import EventType
from conveyor.domain.jobs import new_job, utcnow
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from conveyor.domain.webhooks import (
    Delivery,
    DeliveryState,
    Subscription,
    SubscriptionSpec,
    new_secret,
)
from conveyor.loops.notifier import Notifier, NotifierLimits
from conveyor.net.policy import OutboundPolicy
from conveyor.net.webhook_sender import HttpSender
from conveyor.store import accounts_for, webhooks_for
from conveyor.store.leadership import SoleLeadership
from conveyor.store.protocol import Store
from conveyor.store.webhooks_protocol import WebhookStore
from tests.contract.conftest import BOX, FakeClock
from tests.loopback import serving
from tests.unit.test_outbound_guard import StubResolver

pytestmark = pytest.mark.anyio

ACME = "acme"
START = utcnow().replace(microsecond=0)
LOOPBACK = OutboundPolicy.from_entries(["127.0.0.1"])


@dataclass
class Receiver:
    """A webhook receiver that verifies each request with the secrets it knows."""

    secrets: list[str] = field(default_factory=list)
    status: int = 204
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(webhook-id, body) of each verified request, in arrival order."""
    verified_by: list[set[str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        headers = dict(request.headers)
        good = set()
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except Exception:  # noqa: S112 - a secret that does not verify
                continue
            good.add(secret)
        if not good:
            return web.Response(status=401, text="bad signature")
        self.received.append((request.headers["webhook-id"], json.loads(body)))
        self.verified_by.append(good)
        return web.Response(status=self.status, text="thanks" if self.status < 300 else "down")


@dataclass
class Rig:
    store: Store
    webhooks: WebhookStore
    clock: FakeClock
    receiver: Receiver
    url: str

    def notifier(self, **limits: Any) -> Notifier:
        return Notifier(
            self.store,
            self.webhooks,
            SoleLeadership(),
            HttpSender(LOOPBACK),
            self.clock,
            limits=NotifierLimits(**limits),
        )

    async def enqueue(self) -> None:
        """One new job: one ``job.enqueued`` event."""
        await self.store.enqueue([new_job("report.build", {}, tenant_id=ACME, now=self.clock())])

    async def subscribe(self, url: str | None = None, **spec: Any) -> Subscription:
        secret = new_secret()
        self.receiver.secrets.append(secret)
        return await self.webhooks.add(
            ACME, SubscriptionSpec(url=url or self.url, **spec), secret, self.clock()
        )


@pytest.fixture
async def rig(store: Store) -> AsyncIterator[Rig]:
    clock = FakeClock(START)
    store.clock = clock
    await accounts_for(store).create_tenant(
        Tenant(ACME, "Acme", TenantStatus.ACTIVE, False, clock())
    )
    receiver = Receiver()
    async with serving(receiver.handle) as port:
        yield Rig(store, webhooks_for(store, BOX), clock, receiver, f"http://127.0.0.1:{port}/hook")


async def rounds(notifier: Notifier, times: int = 5) -> None:
    """Let the notifier work (and its deliveries finish) a few times."""
    for _ in range(times):
        await notifier.run_once()
        await notifier.drain()


async def run_a_job(rig: Rig) -> int:
    """Enqueue, claim and complete one job: three events."""
    await rig.enqueue()
    [job] = await rig.store.claim(ACME, "default", "w1", 1, 60.0)
    finish = Finish(job.id, job.attempt, JobState.COMPLETED, EventType.JOB_SUCCEEDED, result={})
    assert await rig.store.finish([finish]) == [True]
    return job.id


async def test_events_are_delivered_signed_and_in_order_per_job(rig: Rig) -> None:
    await rig.subscribe(event_types=("job.*",))
    job_id = await run_a_job(rig)
    await rounds(rig.notifier())
    kinds = [body["type"] for _, body in rig.receiver.received]
    assert kinds == ["job.enqueued", "job.started", "job.succeeded"]
    assert {body["job_id"] for _, body in rig.receiver.received} == {job_id}
    assert [mid for mid, _ in rig.receiver.received] == [
        f"evt_{body['id']}" for _, body in rig.receiver.received
    ]


async def test_a_receiver_down_for_a_while_gets_every_event_with_the_same_ids(rig: Rig) -> None:
    webhook = await rig.subscribe()
    rig.receiver.status = 500
    await run_a_job(rig)
    notifier = rig.notifier()
    await rounds(notifier, 2)
    # In order per job: only the first event was tried, and it waits for its retry.
    assert [body["type"] for _, body in rig.receiver.received] == ["job.enqueued"]
    for _ in range(3):
        rig.clock.advance(3600)
        await rounds(notifier, 1)
    rig.receiver.status = 200
    rig.clock.advance(4 * 3600)
    await rounds(notifier)
    ids = [mid for mid, _ in rig.receiver.received]
    first = ids[0]
    assert ids.count(first) == 5  # four failures, then delivered: one webhook-id
    assert list(dict.fromkeys(ids))[1:] == ids[5:]
    log = await rig.webhooks.list_deliveries(ACME, webhook.id, 10)
    assert {d.state for d in log} == {DeliveryState.DELIVERED}
    assert max(d.attempts for d in log) == 5


async def test_a_receiver_not_listening_is_retried(rig: Rig) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    webhook = await rig.subscribe(url=closed)
    await rig.enqueue()
    await rounds(rig.notifier(), 2)
    [delivery] = await rig.webhooks.list_deliveries(ACME, webhook.id, 10)
    assert delivery.state is DeliveryState.PENDING and delivery.attempts == 1
    assert delivery.error and delivery.status_code is None
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > rig.clock()


async def test_a_private_address_is_refused_without_dialling(rig: Rig) -> None:
    webhook = await rig.subscribe(url="http://hooks.internal.test/hook")
    resolver = StubResolver({"hooks.internal.test": ["10.0.0.5"]})
    notifier = rig.notifier()
    notifier.sender = HttpSender(OutboundPolicy(), resolver)
    await rig.enqueue()
    await rounds(notifier, 1)
    [delivery] = await rig.webhooks.list_deliveries(ACME, webhook.id, 10)
    assert "refused" in delivery.error and "private address" in delivery.error
    assert resolver.asked == ["hooks.internal.test"]


async def test_a_subscription_failing_too_often_is_disabled_with_an_event(rig: Rig) -> None:
    webhook = await rig.subscribe()
    rig.receiver.status = 500
    for _ in range(2):
        await rig.enqueue()
    notifier = rig.notifier(disable_after=2)
    await rounds(notifier, 1)
    for _ in range(12):  # more than a day of retries
        rig.clock.advance(3 * 3600 + 1200)
        await rounds(notifier, 1)
    disabled = await rig.webhooks.get(ACME, webhook.id)
    assert not disabled.spec.enabled and "2 deliveries in a row failed" in disabled.disabled_reason
    events = await rig.store.list_events(ACME)
    [event] = [e for e in events if e.type == EventType.WEBHOOK_DISABLED]
    assert event.data["webhook_id"] == webhook.id
    log = await rig.webhooks.list_deliveries(ACME, webhook.id, 10)
    assert {d.state for d in log} == {DeliveryState.FAILED}


async def test_during_a_rotation_both_secrets_sign(rig: Rig) -> None:
    webhook = await rig.subscribe()
    old = webhook.secret
    new = new_secret()
    rig.receiver.secrets.append(new)
    await rig.webhooks.rotate(ACME, webhook.id, new, rig.clock() + timedelta(hours=24), rig.clock())
    await rig.enqueue()
    await rounds(rig.notifier(), 2)
    assert rig.receiver.verified_by == [{old, new}]
    rig.clock.advance(24 * 3600)
    await rig.enqueue()
    await rounds(rig.notifier(), 2)
    assert rig.receiver.verified_by[-1] == {new}


async def test_a_redelivery_is_sent_with_the_same_id(rig: Rig) -> None:
    webhook = await rig.subscribe()
    await rig.enqueue()
    notifier = rig.notifier()
    await rounds(notifier, 2)
    [delivery] = await rig.webhooks.list_deliveries(ACME, webhook.id, 10)
    await rig.webhooks.redeliver(ACME, webhook.id, delivery.id, rig.clock())
    await rounds(notifier, 2)
    assert [mid for mid, _ in rig.receiver.received] == [delivery.message_id] * 2


async def test_the_secret_is_never_logged(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    webhook = await rig.subscribe()
    rig.receiver.status = 500
    await rig.enqueue()
    notifier = rig.notifier(disable_after=1)
    for _ in range(12):
        await rounds(notifier, 1)
        rig.clock.advance(4 * 3600)
    assert not (await rig.webhooks.get(ACME, webhook.id)).spec.enabled
    assert caplog.records and webhook.secret not in caplog.text
    assert webhook.secret.removeprefix("whsec_") not in caplog.text


async def test_an_event_committed_late_is_not_skipped(rig: Rig, store_kind: str) -> None:
    if store_kind != "postgres":
        pytest.skip("only PostgreSQL commits concurrent writers out of id order")
    import psycopg

    await rig.subscribe()
    url = rig.store.url  # type: ignore[attr-defined]
    notifier = rig.notifier()
    async with await psycopg.AsyncConnection.connect(url) as late:
        await late.execute(
            "INSERT INTO events (tenant_id, type, data, created_at)"
            " VALUES ('acme', 'job.note', '{}', now())"
        )
        await rig.enqueue()
        await rounds(notifier, 2)
        await late.commit()
    await rounds(notifier, 2)
    assert sorted(body["type"] for _, body in rig.receiver.received) == [
        "job.enqueued",
        "job.note",
    ]


async def test_a_slow_receiver_does_not_hold_up_another(rig: Rig) -> None:
    release = asyncio.Event()

    async def stalled(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    async with serving(stalled) as port:
        slow = await rig.subscribe(url=f"http://127.0.0.1:{port}/slow")
        await rig.subscribe()
        for _ in range(3):
            await rig.enqueue()
        notifier = rig.notifier(per_webhook=1)
        for _ in range(100):
            await notifier.run_once()
            if len(rig.receiver.received) == 3:
                break
            await asyncio.sleep(0.02)
        assert len(rig.receiver.received) == 3
        log = await rig.webhooks.list_deliveries(ACME, slow.id, 10)
        assert {d.attempts for d in log} == {0}  # one in flight, the rest waiting its turn
        release.set()
        await notifier.stop()


async def test_a_freed_slot_is_filled_at_once_and_nothing_is_sent_twice(rig: Rig) -> None:
    """One round sends every due delivery: each finished one starts the next without
    waiting for a round, and one that ends while due deliveries are being read is not
    read back as pending and sent again."""
    await rig.subscribe(event_types=("job.*",))
    for _ in range(60):
        await rig.enqueue()
    notifier = rig.notifier(per_webhook=4)
    notifier.leading = True
    await notifier.run_once()
    await notifier.drain()
    sent = [mid for mid, _ in rig.receiver.received]
    assert len(sent) == 60
    assert len(set(sent)) == 60


async def test_a_queue_filter_follows_a_job_through_every_event(rig: Rig) -> None:
    """``job.started`` and ``job.succeeded`` do not name the queue or task in their data;
    a queue or task filter still passes them for jobs of that queue or task."""
    await rig.subscribe(event_types=("job.*",), queues=("default",), tasks=("report.build",))
    other = await rig.subscribe(url=rig.url, event_types=("job.*",), queues=("mail",))
    job_id = await run_a_job(rig)
    await rounds(rig.notifier())
    kinds = [body["type"] for _, body in rig.receiver.received]
    assert kinds == ["job.enqueued", "job.started", "job.succeeded"]
    assert {body["job_id"] for _, body in rig.receiver.received} == {job_id}
    assert await rig.webhooks.list_deliveries(ACME, other.id, 10) == []


async def test_nothing_new_starts_once_the_notifier_is_stopping(rig: Rig) -> None:
    """A refill reading due deliveries when ``stop()`` begins starts none of them."""
    await rig.subscribe(event_types=("job.*",))
    for _ in range(3):
        await rig.enqueue()
    notifier = rig.notifier(per_webhook=1)
    read_due = rig.webhooks.due
    reads = 0

    async def due_then_stop(*args: Any) -> list[Delivery]:
        nonlocal reads
        reads += 1
        found = await read_due(*args)
        if reads == 2:  # the refill after the first delivery: stop() begins meanwhile
            notifier._stop.set()
        return found

    rig.webhooks.due = due_then_stop  # type: ignore[method-assign]
    await notifier.run_once()
    await notifier.drain()
    assert reads == 2
    assert len(rig.receiver.received) == 1
