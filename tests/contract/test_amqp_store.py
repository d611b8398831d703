"""The AmqpStore contract: routes, their counters and the egress cursor, on SQLite and
on PostgreSQL, with a clock the test moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from conveyor.domain.accounts import Tenant, TenantStatus
from conveyor.domain.errors import Conflict, NotFound
from conveyor.domain.jobs import new_job
from conveyor.store import accounts_for, amqp_for
from conveyor.store.amqp_protocol import AmqpStore, Outcome, RouteSpec
from conveyor.store.protocol import Store
from tests.contract.conftest import FakeClock

pytestmark = pytest.mark.anyio

ACME = "acme"
GLOBEX = "globex"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SPEC = RouteSpec(queue="acme.crm.changes", task="crm.contact.update")


async def forget_amqp_rows(store: Store) -> None:
    """The shared PostgreSQL database keeps rows of earlier tests: start empty."""
    await store.run_sql([("DELETE FROM amqp_routes", {}), ("DELETE FROM amqp_cursor", {})])


@pytest.fixture
async def amqp(store: Store, clock: FakeClock) -> AmqpStore:
    """The AMQP store, with tenants acme and globex; the clock at START."""
    clock.now = START
    await forget_amqp_rows(store)
    accounts = accounts_for(store)
    for tenant_id in (ACME, GLOBEX):
        await accounts.create_tenant(
            Tenant(tenant_id, tenant_id.title(), TenantStatus.ACTIVE, False, clock())
        )
    return amqp_for(store)


async def test_a_route_is_stored_and_read_back(amqp: AmqpStore, clock: FakeClock) -> None:
    spec = replace(SPEC, job_queue="crm", priority=2)
    route = await amqp.add(ACME, spec, clock())
    assert route.spec == spec
    assert route.tenant_id == ACME
    assert route.counts.received == 0
    assert route.counts.last_message_at is None
    assert route.created_at == START
    assert await amqp.get(ACME, route.id) == route
    assert await amqp.list_routes(ACME) == [route]


async def test_routes_of_one_tenant_are_invisible_to_another(
    amqp: AmqpStore, clock: FakeClock
) -> None:
    route = await amqp.add(ACME, SPEC, clock())
    assert await amqp.list_routes(GLOBEX) == []
    with pytest.raises(NotFound):
        await amqp.get(GLOBEX, route.id)
    with pytest.raises(NotFound):
        await amqp.update(GLOBEX, route.id, replace(SPEC, task="other"), clock())
    with pytest.raises(NotFound):
        await amqp.delete(GLOBEX, route.id)
    assert (await amqp.get(ACME, route.id)).spec == SPEC


async def test_a_rabbitmq_queue_is_routed_once(amqp: AmqpStore, clock: FakeClock) -> None:
    await amqp.add(ACME, SPEC, clock())
    with pytest.raises(Conflict, match="routed already"):
        await amqp.add(GLOBEX, replace(SPEC, task="globex.task"), clock())
    other = await amqp.add(ACME, replace(SPEC, queue="acme.other"), clock())
    with pytest.raises(Conflict, match="routed already"):
        await amqp.update(ACME, other.id, SPEC, clock())


async def test_a_route_of_an_unknown_tenant_is_refused(amqp: AmqpStore, clock: FakeClock) -> None:
    with pytest.raises(NotFound, match="tenant"):
        await amqp.add("nowhere", SPEC, clock())


async def test_update_keeps_counters_and_delete_forgets(amqp: AmqpStore, clock: FakeClock) -> None:
    route = await amqp.add(ACME, SPEC, clock())
    await amqp.count(route.id, Outcome.ACCEPTED, "", clock())
    later = clock.advance(60)
    changed = await amqp.update(ACME, route.id, replace(SPEC, enabled=False), later)
    assert changed.spec.enabled is False
    assert changed.updated_at == later
    assert changed.counts.accepted == 1
    assert await amqp.enabled() == []
    await amqp.delete(ACME, route.id)
    with pytest.raises(NotFound):
        await amqp.get(ACME, route.id)


async def test_enabled_lists_every_active_tenants_enabled_routes(
    amqp: AmqpStore, store: Store, clock: FakeClock
) -> None:
    first = await amqp.add(ACME, SPEC, clock())
    await amqp.add(ACME, replace(SPEC, queue="acme.off", enabled=False), clock())
    second = await amqp.add(GLOBEX, replace(SPEC, queue="globex.in"), clock())
    assert [r.id for r in await amqp.enabled()] == [first.id, second.id]
    await store.run_sql([("UPDATE tenants SET status = 'suspended' WHERE id = 'globex'", {})])
    assert [r.id for r in await amqp.enabled()] == [first.id]


async def test_counters_count_each_outcome_and_keep_the_last_error(
    amqp: AmqpStore, clock: FakeClock
) -> None:
    route = await amqp.add(ACME, SPEC, clock())
    await amqp.count(route.id, Outcome.ACCEPTED, "", clock())
    await amqp.count(route.id, Outcome.ACCEPTED, "", clock())
    await amqp.count(route.id, Outcome.DUPLICATE, "", clock())
    await amqp.count(route.id, Outcome.DEAD_LETTERED, "content_type is required", clock())
    last = clock.advance(5)
    await amqp.count(route.id, Outcome.FAILED, "", last)
    counts = (await amqp.get(ACME, route.id)).counts
    assert (counts.received, counts.accepted, counts.duplicates) == (5, 2, 1)
    assert (counts.dead_lettered, counts.failed) == (1, 1)
    assert counts.last_error == "content_type is required"
    assert counts.last_message_at == last


async def test_a_noted_error_becomes_the_last_error_without_a_count(
    amqp: AmqpStore, clock: FakeClock
) -> None:
    route = await amqp.add(ACME, SPEC, clock())
    await amqp.note_error(route.id, "cannot consume: PRECONDITION_FAILED")
    counts = (await amqp.get(ACME, route.id)).counts
    assert counts.last_error == "cannot consume: PRECONDITION_FAILED"
    assert counts.received == 0


async def test_has_message_looks_in_one_tenant(
    amqp: AmqpStore, store: Store, clock: FakeClock
) -> None:
    job = new_job("crm.contact.update", {}, tenant_id=ACME, now=clock(), message_id="m-1")
    await store.enqueue([job])
    assert await amqp.has_message(ACME, "m-1")
    assert not await amqp.has_message(ACME, "m-2")
    assert not await amqp.has_message(GLOBEX, "m-1")


async def test_the_cursor_starts_after_the_latest_event_and_moves_by_compare_and_set(
    amqp: AmqpStore, store: Store, clock: FakeClock
) -> None:
    assert await amqp.read_cursor("egress") is None
    await store.enqueue([new_job("t", {}, tenant_id=ACME, now=clock()) for _ in range(3)])
    [*_, latest] = await store.list_events(None, 0, 100)
    start = await amqp.cursor("egress", clock())
    assert start == latest.id
    assert await amqp.cursor("egress", clock()) == start
    assert await amqp.advance_cursor("egress", start, start + 5, clock())
    assert not await amqp.advance_cursor("egress", start, start + 9, clock())
    assert await amqp.read_cursor("egress") == start + 5


async def test_failed_attempts_are_counted_per_message_until_it_is_settled(
    amqp: AmqpStore, clock: FakeClock
) -> None:
    route = await amqp.add(ACME, SPEC, clock())
    other = await amqp.add(ACME, replace(SPEC, queue="acme.other"), clock())
    assert [await amqp.failed_attempt(route.id, "m-1", clock()) for _ in range(3)] == [1, 2, 3]
    assert await amqp.failed_attempt(route.id, "m-2", clock()) == 1
    assert await amqp.failed_attempt(other.id, "m-1", clock()) == 1
    await amqp.count(route.id, Outcome.FAILED, "boom", clock(), "m-1")
    assert await amqp.failed_attempt(route.id, "m-1", clock()) == 4
    await amqp.count(route.id, Outcome.ACCEPTED, "", clock(), "m-1")
    assert await amqp.failed_attempt(route.id, "m-1", clock()) == 1
    await amqp.count(route.id, Outcome.DEAD_LETTERED, "gave up", clock(), "m-2")
    assert await amqp.failed_attempt(route.id, "m-2", clock()) == 1
    assert (await amqp.get(ACME, route.id)).counts.received == 3
    await amqp.delete(ACME, route.id)
    assert await amqp.failed_attempt(other.id, "m-1", clock()) == 2
