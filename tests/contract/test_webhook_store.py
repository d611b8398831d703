"""The WebhookStore contract: every case runs on SQLite and on PostgreSQL, with a clock
the test moves."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.accounts import Tenant, TenantStatus
from conveyor.domain.errors import NotFound
from conveyor.domain.events import EventType
from conveyor.domain.jobs import new_job
from conveyor.domain.webhooks import (
    AttemptResult,
    Delivery,
    DeliveryState,
    Subscription,
    SubscriptionSpec,
)
from conveyor.store import accounts_for, webhooks_for
from conveyor.store.protocol import Store
from conveyor.store.sealing import SecretBox, is_sealed
from conveyor.store.webhooks_protocol import WebhookStore
from tests.contract.conftest import BOX, FakeClock

pytestmark = pytest.mark.anyio

ACME = "acme"
GLOBEX = "globex"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SPEC = SubscriptionSpec(url="http://127.0.0.1:9/hook", event_types=("job.*",))
OK = AttemptResult(204, 12)
DOWN = AttemptResult(500, 7, response="down")


@pytest.fixture
async def webhooks(store: Store, clock: FakeClock) -> WebhookStore:
    """The webhook store, with tenants acme and globex; the clock at START."""
    clock.now = START
    accounts = accounts_for(store)
    for tenant_id in (ACME, GLOBEX):
        await accounts.create_tenant(
            Tenant(tenant_id, tenant_id.title(), TenantStatus.ACTIVE, False, clock())
        )
    return webhooks_for(store, BOX)


async def _jobs(store: Store, clock: FakeClock, count: int, tenant: str = ACME) -> None:
    jobs = [new_job("report.build", {"n": n}, tenant_id=tenant, now=clock()) for n in range(count)]
    await store.enqueue(jobs)


async def _delivering(
    store: Store, webhooks: WebhookStore, clock: FakeClock, jobs: int
) -> tuple[Subscription, list[Delivery]]:
    """A Subscription (all events) and the deliveries of ``jobs`` new jobs, oldest first."""
    webhook = await webhooks.add(ACME, SubscriptionSpec(url=SPEC.url), "whsec_c2VjcmV0", clock())
    await _jobs(store, clock, jobs)
    await _collect(store, webhooks, clock)
    made = await webhooks.list_deliveries(ACME, webhook.id, 100)
    return webhook, sorted(made, key=lambda d: d.id)


async def _collect(store: Store, webhooks: WebhookStore, clock: FakeClock) -> None:
    for webhook in await webhooks.enabled():
        events = await store.list_events(webhook.tenant_id, webhook.cursor)
        if events:
            assert await webhooks.record_events(webhook, events, events[-1].id, clock())


async def test_a_subscription_starts_after_the_tenants_latest_event(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    await _jobs(store, clock, 2)
    webhook = await webhooks.add(ACME, SPEC, "whsec_c2VjcmV0", clock())
    assert webhook.cursor == (await store.list_events(ACME))[-1].id
    assert await webhooks.get(ACME, webhook.id, secrets=True) == webhook
    assert await webhooks.list_webhooks(ACME) == [replace(webhook, secret="")]
    assert await webhooks.list_webhooks(GLOBEX) == []


async def test_another_tenant_can_neither_read_nor_change_a_subscription(
    webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook = await webhooks.add(ACME, SPEC, "whsec_c2VjcmV0", clock())
    with pytest.raises(NotFound):
        await webhooks.get(GLOBEX, webhook.id)
    with pytest.raises(NotFound):
        await webhooks.update(GLOBEX, webhook.id, SPEC, clock())
    with pytest.raises(NotFound):
        await webhooks.delete(GLOBEX, webhook.id)
    with pytest.raises(NotFound):
        await webhooks.rotate(GLOBEX, webhook.id, "whsec_bmV3", clock(), clock())
    assert await webhooks.get(ACME, webhook.id, secrets=True) == webhook


async def test_rotation_keeps_the_old_secret_until_the_overlap_ends(
    webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook = await webhooks.add(ACME, SPEC, "whsec_b2xk", clock())
    until = clock() + timedelta(hours=24)
    rotated = await webhooks.rotate(ACME, webhook.id, "whsec_bmV3", until, clock())
    assert (rotated.secret, rotated.previous_secret) == ("whsec_bmV3", "whsec_b2xk")
    assert rotated.signing_secrets(clock()) == ["whsec_bmV3", "whsec_b2xk"]
    assert rotated.signing_secrets(until) == ["whsec_bmV3"]


async def test_events_become_deliveries_once_and_the_cursor_moves_on(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook = await webhooks.add(ACME, SPEC, "whsec_c2VjcmV0", clock())
    await _jobs(store, clock, 3)
    await _jobs(store, clock, 1, tenant=GLOBEX)
    events = await store.list_events(ACME, webhook.cursor)
    assert await webhooks.record_events(webhook, events, events[-1].id, clock())
    # A second round read from the old position changes nothing.
    assert not await webhooks.record_events(webhook, events, events[-1].id, clock())
    assert (await webhooks.get(ACME, webhook.id)).cursor == events[-1].id
    log = await webhooks.list_deliveries(ACME, webhook.id, 10)
    assert [d.event_id for d in log] == [e.id for e in reversed(events)]
    assert all(d.state is DeliveryState.PENDING and d.attempts == 0 for d in log)
    body = json.loads(log[-1].body)
    assert body["id"] == events[0].id and body["tenant"] == ACME
    assert await webhooks.list_deliveries(GLOBEX, webhook.id, 10) == []


async def test_a_later_delivery_of_a_job_waits_for_the_earlier_one(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook = await webhooks.add(ACME, SubscriptionSpec(url=SPEC.url), "whsec_c2VjcmV0", clock())
    await _jobs(store, clock, 1)
    [job] = await store.claim(ACME, "default", "w1", 1, 60.0)
    await _collect(store, webhooks, clock)
    first, second = sorted(await webhooks.list_deliveries(ACME, webhook.id, 10), key=lambda d: d.id)
    assert first.job_id == second.job_id == job.id
    assert [d.id for d in await webhooks.due(webhook.id, clock(), 10)] == [first.id]
    await webhooks.record_attempt(first, DOWN, clock() + timedelta(seconds=5), clock())
    assert await webhooks.due(webhook.id, clock(), 10) == []  # first waits, second behind it
    await webhooks.record_attempt(first, OK, None, clock())
    assert [d.id for d in await webhooks.due(webhook.id, clock(), 10)] == [second.id]
    assert await webhooks.next_attempt_at() == clock()


async def test_failures_in_a_row_are_counted_and_a_success_resets_them(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook, (one, two, three) = await _delivering(store, webhooks, clock, 3)
    assert await webhooks.record_attempt(one, DOWN, None, clock()) == 1
    assert await webhooks.record_attempt(two, DOWN, None, clock()) == 2
    assert await webhooks.record_attempt(three, OK, None, clock()) is None
    assert (await webhooks.get(ACME, webhook.id)).failures == 0
    failed = [d for d in await webhooks.list_deliveries(ACME, webhook.id, 10) if d.id == one.id]
    assert failed[0].state is DeliveryState.FAILED and failed[0].status_code == 500
    assert failed[0].attempts == 1 and failed[0].response == "down"


async def test_disabling_appends_one_event(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook = await webhooks.add(ACME, SPEC, "whsec_c2VjcmV0", clock())
    data = json.dumps({"webhook_id": webhook.id})
    assert await webhooks.disable(webhook.id, "10 in a row", data, clock())
    assert not await webhooks.disable(webhook.id, "10 in a row", data, clock())
    disabled = await webhooks.get(ACME, webhook.id)
    assert not disabled.spec.enabled and disabled.disabled_reason == "10 in a row"
    events = [e for e in await store.list_events(ACME) if e.type == EventType.WEBHOOK_DISABLED]
    assert [e.data for e in events] == [{"webhook_id": webhook.id}]
    assert await webhooks.enabled() == []
    enabled = await webhooks.update(ACME, webhook.id, SPEC, clock())
    assert enabled.spec.enabled and enabled.disabled_reason == ""


async def test_a_delivery_is_sent_again_on_request(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook, [delivery] = await _delivering(store, webhooks, clock, 1)
    await webhooks.record_attempt(delivery, OK, None, clock())
    clock.advance(60)
    again = await webhooks.redeliver(ACME, webhook.id, delivery.id, clock())
    assert again.state is DeliveryState.PENDING and again.window_start == clock()
    assert again.attempts == 1 and again.message_id == delivery.message_id
    with pytest.raises(NotFound):
        await webhooks.redeliver(GLOBEX, webhook.id, delivery.id, clock())


async def test_deleting_a_tenant_deletes_its_webhooks(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook, _ = await _delivering(store, webhooks, clock, 1)
    await accounts_for(store).delete_tenant(ACME)
    assert await webhooks.list_webhooks(ACME) == []
    assert await webhooks.list_deliveries(ACME, webhook.id, 10) == []


async def test_changing_an_enabled_subscription_keeps_its_failures(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook, [delivery] = await _delivering(store, webhooks, clock, 1)
    await webhooks.record_attempt(delivery, DOWN, None, clock())
    described = replace(webhook.spec, description="renamed")
    assert (await webhooks.update(ACME, webhook.id, described, clock())).failures == 1
    paused = await webhooks.update(ACME, webhook.id, replace(described, enabled=False), clock())
    assert paused.failures == 1
    assert (await webhooks.update(ACME, webhook.id, described, clock())).failures == 0


async def _stored_secrets(store: Store, webhook_id: int) -> tuple[str, str | None]:
    """The secret columns as the database holds them."""
    sql = f"SELECT secret, previous_secret FROM webhooks WHERE id = {int(webhook_id)}"
    [[row]] = await store.run_sql([(sql, {})], write=False)
    return row["secret"], row["previous_secret"]


async def test_secrets_are_kept_sealed_and_plain_ones_get_sealed_once(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    webhook = await webhooks.add(ACME, SPEC, "whsec_b2xk", clock())
    await webhooks.rotate(ACME, webhook.id, "whsec_bmV3", clock() + timedelta(days=1), clock())

    async def sealed_and_read(expected: tuple[str, str]) -> None:
        secret, previous = await _stored_secrets(store, webhook.id)
        assert is_sealed(secret) and previous is not None and is_sealed(previous)
        assert "whsec" not in secret + previous
        read = await webhooks.get(ACME, webhook.id, secrets=True)
        assert (read.secret, read.previous_secret) == expected

    await sealed_and_read(("whsec_bmV3", "whsec_b2xk"))
    plain = (
        "UPDATE webhooks SET secret = 'whsec_cGxhaW4', previous_secret = 'whsec_b2xk'"
        f" WHERE id = {webhook.id}"
    )
    await store.run_sql([(plain, {})])
    assert (await webhooks.get(ACME, webhook.id, secrets=True)).secret == "whsec_cGxhaW4"
    assert await webhooks.seal_secrets() == 2
    assert await webhooks.seal_secrets() == 0
    await sealed_and_read(("whsec_cGxhaW4", "whsec_b2xk"))


class _CountingBox(SecretBox):
    """A box that counts the secrets it was asked to open."""

    opened = 0

    def open(self, stored: str) -> str:
        self.opened += 1
        return super().open(stored)


async def test_lists_and_reads_leave_secrets_sealed_unless_asked(
    store: Store, clock: FakeClock, webhooks: WebhookStore
) -> None:
    box = _CountingBox("a key for this test, long enough")
    counted = webhooks_for(store, box)
    first = await counted.add(ACME, SPEC, "whsec_b2xk", clock())
    await counted.add(ACME, SPEC, "whsec_dHdv", clock())
    await counted.rotate(ACME, first.id, "whsec_bmV3", clock() + timedelta(days=1), clock())
    box.opened = 0

    listed = await counted.list_webhooks(ACME)
    read = await counted.get(ACME, first.id)
    edited = await counted.update(ACME, first.id, replace(SPEC, description="edited"), clock())

    assert [(w.secret, w.previous_secret) for w in [*listed, read, edited]] == [("", None)] * 4
    assert box.opened == 0
    opened = await counted.get(ACME, first.id, secrets=True)
    assert (opened.secret, opened.previous_secret) == ("whsec_bmV3", "whsec_b2xk")
    assert box.opened == 2


async def test_a_secret_of_another_key_is_left_out_of_sending_until_rotated(
    store: Store, webhooks: WebhookStore, clock: FakeClock
) -> None:
    mine = await webhooks.add(ACME, SPEC, "whsec_bWluZQ", clock())
    strangers = webhooks_for(store, SecretBox("another node's key, long"))
    theirs = await strangers.add(GLOBEX, SPEC, "whsec_dGhlaXJz", clock())
    assert [w.id for w in await webhooks.enabled()] == [mine.id]
    assert (await webhooks.get(GLOBEX, theirs.id, secrets=True)).secret == ""  # not sendable
    assert [w.id for w in await webhooks.list_webhooks(GLOBEX)] == [theirs.id]
    assert await webhooks.seal_secrets() == 0  # left as it is: nothing to lose
    until = clock() + timedelta(days=1)
    rotated = await webhooks.rotate(GLOBEX, theirs.id, "whsec_bmV3", until, clock())
    assert (rotated.secret, rotated.previous_secret) == ("whsec_bmV3", None)
    assert {w.id for w in await webhooks.enabled()} == {mine.id, theirs.id}
