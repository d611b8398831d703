"""The HookStore contract: every case runs on SQLite and on PostgreSQL, with a clock the
test moves."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.accounts import Tenant, TenantStatus
from conveyor.domain.errors import Conflict, NotFound
from conveyor.domain.events import EventType
from conveyor.domain.hooks import (
    HookSpec,
    IncomingHook,
    NewReceipt,
    ReceiptFilter,
    VerifyScheme,
    new_receipt_id,
    received_data,
    token_hash,
)
from conveyor.loops.hook_pruner import ReceiptPruner
from conveyor.store import accounts_for, hooks_for
from conveyor.store.hooks_protocol import HookStore
from conveyor.store.protocol import Store
from conveyor.store.sealing import SecretBox, UnreadableSecret, is_sealed
from tests.contract.conftest import BOX, FakeClock

pytestmark = pytest.mark.anyio

ACME = "acme"
GLOBEX = "globex"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SPEC = HookSpec(name="backups", task="backup.done", queue="backups", priority=2)
EVERY_BYTE = bytes(range(256)) * 3


@pytest.fixture
async def hooks(store: Store, clock: FakeClock) -> HookStore:
    """The hook store, with tenants acme and globex; the clock at START."""
    clock.now = START
    accounts = accounts_for(store)
    for tenant_id in (ACME, GLOBEX):
        await accounts.create_tenant(
            Tenant(tenant_id, tenant_id.title(), TenantStatus.ACTIVE, False, clock())
        )
    return hooks_for(store, BOX)


async def _hook(
    hooks: HookStore, clock: FakeClock, tenant: str = ACME, name: str = "backups"
) -> IncomingHook:
    return await hooks.add(tenant, replace(SPEC, name=name), "", token_hash(name + tenant), clock())


def _receipt(
    hook: IncomingHook,
    clock: FakeClock,
    body: bytes = b"{}",
    delivery_id: str | None = None,
) -> NewReceipt:
    return NewReceipt(
        id=new_receipt_id(),
        tenant_id=hook.tenant_id,
        hook_id=hook.id,
        delivery_id=delivery_id,
        method="POST",
        content_type="application/octet-stream",
        headers=(("Content-Type", "application/octet-stream"), ("X-Note", "é ünïcode")),
        body=body,
        ip="203.0.113.7",
        received_at=clock(),
        verified=False,
        task=hook.spec.task,
    )


async def _record(hooks: HookStore, hook: IncomingHook, new: NewReceipt) -> tuple[str, bool]:
    receipt, duplicate = await hooks.record(hook, new, received_data(hook, new))
    return receipt.id, duplicate


async def test_hooks_are_kept_per_tenant(hooks: HookStore, clock: FakeClock) -> None:
    mine = await _hook(hooks, clock)
    theirs = await _hook(hooks, clock, GLOBEX)
    assert mine.spec == SPEC and mine.tenant_id == ACME
    assert await hooks.get(ACME, mine.id) == mine
    assert await hooks.list_hooks(ACME) == [mine]
    assert await hooks.list_hooks(GLOBEX) == [theirs]
    with pytest.raises(NotFound):
        await hooks.get(ACME, theirs.id)
    with pytest.raises(NotFound):
        await hooks.delete(ACME, theirs.id)
    with pytest.raises(NotFound):
        await hooks.update(ACME, theirs.id, SPEC, "", clock())
    with pytest.raises(Conflict, match="backups"):
        await hooks.add(ACME, SPEC, "", token_hash("other"), clock())


async def test_a_hook_is_changed_and_given_a_new_token(hooks: HookStore, clock: FakeClock) -> None:
    hook = await _hook(hooks, clock)
    clock.advance(5)
    spec = HookSpec(name="renamed", verify=VerifyScheme.HMAC_SHA256, delivery_header="x-d")
    changed = await hooks.update(ACME, hook.id, spec, "s3cret-s3cret", clock())
    assert changed.spec == spec and changed.secret == "s3cret-s3cret"
    assert changed.updated_at == clock() and changed.created_at == START
    assert await hooks.by_token(token_hash("backups" + ACME)) == changed
    await hooks.set_token(ACME, hook.id, token_hash("new"), clock())
    assert await hooks.by_token(token_hash("backups" + ACME)) is None
    assert (await hooks.by_token(token_hash("new"))) == changed


async def test_only_enabled_hooks_of_active_tenants_receive(
    store: Store, hooks: HookStore, clock: FakeClock
) -> None:
    hook = await _hook(hooks, clock)
    token = token_hash("backups" + ACME)
    assert await hooks.by_token(token) == hook
    await hooks.update(ACME, hook.id, replace(SPEC, enabled=False), "", clock())
    assert await hooks.by_token(token) is None
    await hooks.update(ACME, hook.id, SPEC, "", clock())
    await accounts_for(store).set_tenant_status(ACME, TenantStatus.SUSPENDED)
    assert await hooks.by_token(token) is None


async def test_a_receipt_keeps_the_body_byte_for_byte_and_appends_its_event(
    store: Store, hooks: HookStore, clock: FakeClock
) -> None:
    hook = await _hook(hooks, clock)
    new = _receipt(hook, clock, EVERY_BYTE, "dlv-1")
    receipt, duplicate = await hooks.record(hook, new, received_data(hook, new))
    assert not duplicate
    assert receipt.id == new.id and receipt.size == len(EVERY_BYTE)
    assert receipt.headers == new.headers and receipt.received_at == START
    assert receipt.ip == "203.0.113.7" and receipt.job_id is None and receipt.task == "backup.done"
    assert await hooks.receipt_body(ACME, hook.id, receipt.id) == EVERY_BYTE
    assert await hooks.get_receipt(ACME, hook.id, receipt.id) == receipt
    [event] = [e for e in await store.list_events(ACME) if e.type == EventType.HOOK_RECEIVED]
    assert event.job_id is None and event.created_at == START
    assert event.data == {
        "hook_id": hook.id,
        "hook_name": "backups",
        "receipt_id": receipt.id,
        "delivery_id": "dlv-1",
        "task": "backup.done",
        "job_id": None,
        "size": len(EVERY_BYTE),
        "ip": "203.0.113.7",
    }
    with pytest.raises(NotFound):
        await hooks.receipt_body(GLOBEX, hook.id, receipt.id)
    with pytest.raises(NotFound):
        await hooks.get_receipt(GLOBEX, hook.id, receipt.id)


async def test_a_redelivery_stores_nothing_and_returns_the_first_receipt(
    store: Store, hooks: HookStore, clock: FakeClock
) -> None:
    hook = await _hook(hooks, clock)
    first, duplicate = await _record(hooks, hook, _receipt(hook, clock, b"one", "dlv-1"))
    assert not duplicate
    clock.advance(1)
    again, duplicate = await _record(hooks, hook, _receipt(hook, clock, b"two", "dlv-1"))
    assert duplicate and again == first
    assert await hooks.receipt_body(ACME, hook.id, first) == b"one"
    other = await _hook(hooks, clock, name="other")
    _, duplicate = await _record(hooks, other, _receipt(other, clock, b"x", "dlv-1"))
    assert not duplicate
    events = [e for e in await store.list_events(ACME) if e.type == EventType.HOOK_RECEIVED]
    assert len(events) == 2


async def test_concurrent_redeliveries_store_one_receipt(
    store: Store, hooks: HookStore, clock: FakeClock
) -> None:
    hook = await _hook(hooks, clock)
    news = [_receipt(hook, clock, f"copy {n}".encode(), "dlv-race") for n in range(8)]
    results = await asyncio.gather(*(_record(hooks, hook, new) for new in news))
    assert len({receipt_id for receipt_id, _ in results}) == 1
    assert sorted(duplicate for _, duplicate in results) == [False] + [True] * 7
    assert len(await hooks.list_receipts(ACME, hook.id, ReceiptFilter())) == 1
    events = [e for e in await store.list_events(ACME) if e.type == EventType.HOOK_RECEIVED]
    assert len(events) == 1


async def test_requests_without_a_delivery_id_are_all_kept(
    hooks: HookStore, clock: FakeClock
) -> None:
    hook = await _hook(hooks, clock)
    for _ in range(3):
        assert not (await _record(hooks, hook, _receipt(hook, clock)))[1]
    assert len(await hooks.list_receipts(ACME, hook.id, ReceiptFilter())) == 3


async def test_receipts_page_newest_first_and_filter(hooks: HookStore, clock: FakeClock) -> None:
    hook = await _hook(hooks, clock)
    made = []
    for n in range(7):
        if n % 2:
            clock.advance(10)
        made.append((clock(), (await _record(hooks, hook, _receipt(hook, clock, b"", f"d{n}")))[0]))
    newest_first = [rid for _, rid in sorted(made, key=lambda m: (m[0], m[1]), reverse=True)]
    seen: list[str] = []
    before = None
    while True:
        page = await hooks.list_receipts(ACME, hook.id, ReceiptFilter(limit=2, before=before))
        seen += [r.id for r in page]
        if len(page) < 2:
            break
        before = page[-1].id
    assert seen == newest_first
    only = await hooks.list_receipts(ACME, hook.id, ReceiptFilter(delivery_id="d3"))
    assert [r.delivery_id for r in only] == ["d3"]
    window = ReceiptFilter(since=START + timedelta(seconds=10), until=START + timedelta(seconds=30))
    assert {r.delivery_id for r in await hooks.list_receipts(ACME, hook.id, window)} == {
        "d1",
        "d2",
        "d3",
        "d4",
    }
    assert await hooks.list_receipts(GLOBEX, hook.id, ReceiptFilter()) == []


async def test_the_job_is_recorded_on_the_receipt(hooks: HookStore, clock: FakeClock) -> None:
    hook = await _hook(hooks, clock)
    receipt_id, _ = await _record(hooks, hook, _receipt(hook, clock))
    receipt = await hooks.set_job(ACME, receipt_id, 42)
    assert receipt.job_id == 42
    assert (await hooks.get_receipt(ACME, hook.id, receipt_id)).job_id == 42
    with pytest.raises(NotFound):
        await hooks.set_job(GLOBEX, receipt_id, 43)


async def test_receipts_without_their_job_are_found_across_tenants_oldest_first(
    hooks: HookStore, clock: FakeClock
) -> None:
    mine = await _hook(hooks, clock)
    theirs = await _hook(hooks, clock, GLOBEX)
    store_only = await _hook(hooks, clock, name="store-only")
    store_only = await hooks.update(ACME, store_only.id, HookSpec(name="store-only"), "", clock())
    too_old, _ = await _record(hooks, mine, _receipt(mine, clock))
    clock.advance(60)
    lost_mine, _ = await _record(hooks, mine, _receipt(mine, clock))
    clock.advance(1)
    lost_theirs, _ = await _record(hooks, theirs, _receipt(theirs, clock))
    done, _ = await _record(hooks, mine, _receipt(mine, clock))
    await hooks.set_job(ACME, done, 7)
    await _record(hooks, store_only, _receipt(store_only, clock))
    since = START + timedelta(seconds=30)
    clock.advance(60)
    young, _ = await _record(hooks, mine, _receipt(mine, clock))
    found = await hooks.unenqueued(since, clock(), 10)
    assert [(r.id, r.tenant_id, r.task) for r in found] == [
        (lost_mine, ACME, SPEC.task),
        (lost_theirs, GLOBEX, SPEC.task),
    ]
    assert [r.id for r in await hooks.unenqueued(since, clock(), 1)] == [lost_mine]
    assert young not in [r.id for r in found] and too_old not in [r.id for r in found]


async def test_old_receipts_are_pruned_across_tenants(hooks: HookStore, clock: FakeClock) -> None:
    mine = await _hook(hooks, clock)
    theirs = await _hook(hooks, clock, GLOBEX)
    for _ in range(3):
        await _record(hooks, mine, _receipt(mine, clock))
        await _record(hooks, theirs, _receipt(theirs, clock))
    clock.advance(3600)
    kept, _ = await _record(hooks, mine, _receipt(mine, clock))
    assert await hooks.prune(clock() - timedelta(minutes=30), batch=2) == 6
    assert [r.id for r in await hooks.list_receipts(ACME, mine.id, ReceiptFilter())] == [kept]
    assert await hooks.list_receipts(GLOBEX, theirs.id, ReceiptFilter()) == []
    assert await hooks.prune(clock() - timedelta(minutes=30)) == 0


async def test_the_pruner_prunes_hourly_and_retries_lost_enqueues_each_round(
    hooks: HookStore, clock: FakeClock
) -> None:
    hook = await _hook(hooks, clock)
    retried: list[tuple[datetime, datetime]] = []

    async def enqueue_lost(since: datetime, before: datetime) -> int:
        retried.append((since, before))
        return 0

    pruner = ReceiptPruner(hooks, timedelta(days=1), clock, enqueue_lost)
    await _record(hooks, hook, _receipt(hook, clock))
    clock.advance(1800)
    await _record(hooks, hook, _receipt(hook, clock))
    clock.advance(86400)
    assert await pruner.run_once() == 1
    clock.advance(1800)
    assert await pruner.run_once() == 0
    clock.advance(1800)
    assert await pruner.run_once() == 1
    assert len(retried) == 3
    since, before = retried[-1]
    assert before == clock() - timedelta(minutes=1) and before - since == timedelta(days=1)


async def test_deleting_a_hook_deletes_its_receipts(
    store: Store, hooks: HookStore, clock: FakeClock
) -> None:
    hook = await _hook(hooks, clock)
    receipt_id, _ = await _record(hooks, hook, _receipt(hook, clock))
    await hooks.delete(ACME, hook.id)
    with pytest.raises(NotFound):
        await hooks.get(ACME, hook.id)
    [row] = (await store.run_sql([("SELECT COUNT(*) AS n FROM hook_receipts", {})], write=False))[0]
    assert row["n"] == 0
    assert json.loads(json.dumps(receipt_id)) == receipt_id


async def test_a_verification_secret_is_kept_sealed(
    store: Store, hooks: HookStore, clock: FakeClock
) -> None:
    signed = replace(SPEC, verify=VerifyScheme.HMAC_SHA256)
    hook = await hooks.add(ACME, signed, "s3cret-from-sender", token_hash("t"), clock())
    unsigned = await _hook(hooks, clock, name="plain")
    raw = "SELECT id, secret FROM incoming_hooks ORDER BY id"
    [[first, second]] = await store.run_sql([(raw, {})], write=False)
    assert is_sealed(first["secret"]) and "s3cret" not in first["secret"]
    assert second["secret"] == ""  # verifies nothing: no secret to seal
    assert (await hooks.get(ACME, hook.id)).secret == "s3cret-from-sender"
    assert (await hooks.get(ACME, unsigned.id)).secret == ""
    changed = await hooks.update(ACME, hook.id, signed, "n3w", clock())
    assert changed.secret == "n3w"
    assert await hooks.seal_secrets() == 0
    stranger = hooks_for(store, SecretBox("another node's key"))
    assert (await stranger.get(ACME, hook.id)).secret == ""
    with pytest.raises(UnreadableSecret):  # never "no secret": every request would pass
        await stranger.by_token(token_hash("t"))
    await store.run_sql([(f"UPDATE incoming_hooks SET secret = 'pl41n' WHERE id = {hook.id}", {})])
    assert await hooks.seal_secrets() == 1
    [[row]] = await store.run_sql([(raw + " LIMIT 1", {})], write=False)
    assert is_sealed(row["secret"])
    assert (await hooks.get(ACME, hook.id)).secret == "pl41n"
