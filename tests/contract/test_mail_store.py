"""The MailStore on both databases: rules per tenant, the outbox's dedupe keys, the
cursor's compare-and-set, summary preferences and the summary query per user."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from conveyor.domain.accounts import Membership, Role, Tenant, TenantStatus
from conveyor.domain.errors import NotFound
from conveyor.domain.jobs import JobFilter, new_job
from conveyor.domain.mail import (
    MailPreferences,
    MailState,
    NewMail,
    Rendered,
    rule_spec,
)
from conveyor.store import accounts_for, mail_for, schedules_for
from conveyor.store.mail_protocol import MailStore
from conveyor.store.protocol import Store
from tests.contract.conftest import FakeClock
from tests.contract.test_accounts_store import user
from tests.contract.test_schedule_store import minutely, scheduler, service

pytestmark = pytest.mark.anyio

CONTENT = Rendered("Hello", "text", "<p>html</p>")


async def reset_mail(store: Store) -> None:
    """Forget the mail rows a previous test on the shared database left."""
    await store.run_sql(
        [
            ("DELETE FROM mail_outbox", {}),
            ("DELETE FROM mail_rules", {}),
            ("DELETE FROM mail_preferences", {}),
            ("UPDATE mail_cursor SET last_event_id = 0", {}),
        ]
    )


@pytest.fixture
async def mail(store: Store, clock: FakeClock) -> MailStore:
    await reset_mail(store)
    accounts = accounts_for(store)
    for tenant in ("acme", "globex"):
        await accounts.create_tenant(
            Tenant(tenant, tenant.title(), TenantStatus.ACTIVE, False, clock())
        )
    return mail_for(store)


def mail_to(
    key: str, tenant: str = "acme", recipient: str = "a@x.test", job_id: int = 1
) -> NewMail:
    return NewMail(tenant, key, "job.started", job_id, recipient, CONTENT)


async def test_rules_belong_to_their_tenant(mail: MailStore, clock: FakeClock) -> None:
    spec = rule_spec("task:report.build", ["started", "failed"], ["owner", "Ops@X.test"])
    rule = await mail.add_rule("acme", spec, "user:alice@acme.test", clock())
    assert rule.spec.to == ("owner", "ops@x.test")
    assert [r.id for r in await mail.list_rules("acme")] == [rule.id]
    assert await mail.list_rules("globex") == []
    with pytest.raises(NotFound):
        await mail.get_rule("globex", rule.id)
    with pytest.raises(NotFound):
        await mail.delete_rule("globex", rule.id)
    assert (await mail.get_rule("acme", rule.id)).spec == spec
    assert [r.id for r in await mail.all_rules()] == [rule.id]
    await mail.delete_rule("acme", rule.id)
    assert await mail.list_rules("acme") == []


async def test_a_mail_is_queued_once_per_dedupe_key(mail: MailStore, clock: FakeClock) -> None:
    assert await mail.queue(mail_to("job:1:started:a@x.test"), clock())
    assert not await mail.queue(mail_to("job:1:started:a@x.test"), clock())
    assert await mail.exists("job:1:started:a@x.test")
    assert not await mail.exists("job:1:succeeded:a@x.test")
    assert len(await mail.list_outbox("acme", 10)) == 1
    assert await mail.list_outbox("globex", 10) == []


async def test_the_cursor_moves_only_from_where_it_was_read(
    mail: MailStore, clock: FakeClock
) -> None:
    start = await mail.cursor()
    assert start == 0
    assert await mail.record_events([mail_to("k1")], start, 10, clock())
    assert await mail.cursor() == 10
    # A second reader that read the old position loses; its mail was queued already.
    assert not await mail.record_events([mail_to("k1")], start, 12, clock())
    assert await mail.cursor() == 10
    assert [m.dedupe_key for m in await mail.list_outbox("acme", 10)] == ["k1"]


async def test_an_attempt_is_recorded_once_and_due_mails_come_in_time_order(
    mail: MailStore, clock: FakeClock
) -> None:
    await mail.queue(mail_to("first"), clock())
    clock.advance(1)
    await mail.queue(mail_to("second", job_id=2), clock())
    due = await mail.due(clock(), 10)
    assert [m.dedupe_key for m in due] == ["first", "second"]
    first, second = due
    later = clock() + timedelta(minutes=5)
    for claimed in due:
        assert await mail.claim(claimed.id, clock(), clock() + timedelta(minutes=1))
    assert await mail.record_attempt(first.id, MailState.PENDING, later, "421 busy", clock())
    assert await mail.record_attempt(second.id, MailState.SENT, None, "", clock())
    assert not await mail.record_attempt(second.id, MailState.FAILED, None, "x", clock())
    assert await mail.due(clock(), 10) == []
    assert await mail.next_attempt_at() == later
    clock.advance(301)
    [again] = await mail.due(clock(), 10)
    assert again.attempts == 1 and again.last_error == "421 busy"
    states = {m.dedupe_key: m.state for m in await mail.list_outbox("acme", 10)}
    assert states == {"first": MailState.PENDING, "second": MailState.SENT}


async def test_a_mail_is_claimed_once_and_not_due_until_its_lease_ends(
    mail: MailStore, clock: FakeClock
) -> None:
    await mail.queue(mail_to("first"), clock())
    [due] = await mail.due(clock(), 10)
    lease_until = clock() + timedelta(seconds=60)
    assert await mail.claim(due.id, clock(), lease_until)
    assert not await mail.claim(due.id, clock(), lease_until)  # another node
    assert await mail.due(clock(), 10) == []
    clock.advance(61)  # the outcome was never written: the mail is due again
    [again] = await mail.due(clock(), 10)
    assert again.attempts == 1 and again.state is MailState.PENDING
    assert await mail.claim(again.id, clock(), clock() + timedelta(seconds=60))
    assert await mail.record_attempt(again.id, MailState.SENT, None, "", clock())
    [sent] = await mail.list_outbox("acme", 10)
    assert sent.state is MailState.SENT and sent.attempts == 2
    assert not await mail.claim(again.id, clock(), clock())


async def test_a_jobs_mails_to_one_address_go_one_after_another(
    mail: MailStore, clock: FakeClock
) -> None:
    for key, recipient in [("started", "a@x.test"), ("succeeded", "a@x.test"), ("b", "b@x.test")]:
        await mail.queue(mail_to(key, recipient=recipient), clock())
    first, other = await mail.due(clock(), 10)
    assert (first.dedupe_key, other.dedupe_key) == ("started", "b")
    assert await mail.record_attempt(first.id, MailState.SENT, None, "", clock())
    assert [m.dedupe_key for m in await mail.due(clock(), 10)] == ["succeeded", "b"]


async def test_preferences_default_then_change(
    store: Store, mail: MailStore, clock: FakeClock
) -> None:
    accounts = accounts_for(store)
    alice = await accounts.create_user(user("alice@acme.test", clock()))
    assert await mail.preferences(alice.id) == MailPreferences("UTC")
    wanted = MailPreferences("America/Sao_Paulo", time(7, 30), False)
    await mail.set_preferences(alice.id, wanted, clock())
    assert await mail.preferences(alice.id) == wanted
    with pytest.raises(NotFound):
        await mail.preferences("nobody")


async def test_the_summary_query_finds_one_users_jobs_of_the_period_in_one_tenant(
    store: Store, mail: MailStore, clock: FakeClock
) -> None:
    accounts = accounts_for(store)
    alice = await accounts.create_user(user("alice@acme.test", clock()))
    await accounts.add_membership(Membership("acme", alice.id, Role.OWNER, clock()))
    await accounts.add_membership(Membership("globex", alice.id, Role.MEMBER, clock()))
    since = clock()

    def job(tenant: str, creator: str | None) -> object:
        return new_job("report.build", {}, tenant_id=tenant, created_by=creator, now=clock())

    await store.enqueue([job("acme", "alice@acme.test"), job("acme", "bob@acme.test")])  # type: ignore[list-item]
    await store.enqueue([job("globex", "alice@acme.test"), job("acme", None)])  # type: ignore[list-item]
    clock.advance(60)
    await store.enqueue([job("acme", "alice@acme.test")])  # type: ignore[list-item]
    found = await mail.summary_jobs(
        "acme", "alice@acme.test", since, since + timedelta(seconds=30), 100
    )
    assert len(found) == 1 and found[0].task == "report.build" and found[0].state == "available"
    every = await mail.summary_jobs(
        "acme", "alice@acme.test", since, clock() + timedelta(seconds=1), 100
    )
    assert len(every) == 2
    counts = await mail.summary_counts("acme", "alice@acme.test", since, clock() + timedelta(1))
    assert counts == {"available": 2}
    assert await mail.member_emails("acme") == {"alice@acme.test"}
    assert await mail.member_emails("nobody") == set()
    recipients = {(r.tenant_id, r.email) for r in await mail.summary_recipients()}
    assert {("acme", "alice@acme.test"), ("globex", "alice@acme.test")} <= recipients


async def test_a_schedules_jobs_are_created_by_its_owner(
    store: Store, mail: MailStore, clock: FakeClock
) -> None:
    schedules = schedules_for(store)
    await service(schedules, clock).create(minutely())
    clock.advance(60)
    assert await scheduler(store, schedules, clock).run_once() == 1
    [job] = await store.list_jobs("acme", JobFilter())
    assert job.created_by == "owner@acme.test"


async def test_old_sent_and_failed_mails_are_pruned_pending_ones_kept(
    mail: MailStore, clock: FakeClock
) -> None:
    for key in ("sent", "failed", "pending"):
        await mail.queue(mail_to(key), clock())
    found = {m.dedupe_key: m.id for m in await mail.list_outbox("acme", 10)}
    await mail.record_attempt(found["sent"], MailState.SENT, None, "", clock())
    await mail.record_attempt(found["failed"], MailState.FAILED, None, "550", clock())
    await mail.prune(clock())
    assert len(await mail.list_outbox("acme", 10)) == 3
    clock.advance(1)
    await mail.prune(clock())
    assert [m.dedupe_key for m in await mail.list_outbox("acme", 10)] == ["pending"]
