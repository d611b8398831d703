"""Mail end to end: the Mailer on a real store (SQLite and PostgreSQL) sends through a
real SMTP server (aiosmtpd, in this process). The clock is the test's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import anyio
import pytest

from conveyor.domain.accounts import Membership, Role, Tenant, TenantStatus
from conveyor.domain.events import Event, EventType
from conveyor.domain.jobs import ErrorInfo, Job, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.mail import MailPreferences, MailState, rule_spec
from conveyor.domain.outcomes import Finish
from conveyor.loops.mailer import Mailer, MailerLimits
from conveyor.mail.rendering import Renderer
from conveyor.mail.smtp import SmtpConfig, SmtpTransport
from conveyor.server import Server
from conveyor.store import accounts_for, mail_for
from conveyor.store.leadership import SoleLeadership
from conveyor.store.mail_protocol import MailStore
from conveyor.store.protocol import Store
from tests.contract.conftest import FakeClock
from tests.contract.test_accounts_store import user
from tests.contract.test_mail_store import mail_to, reset_mail
from tests.integration.api.conftest import server_settings
from tests.smtp_server import Mailbox, free_port, smtp_server

pytestmark = pytest.mark.anyio

ACME = "acme"
ALICE = "alice@acme.test"
BOB = "bob@acme.test"
BASE = "http://conveyor.test"


@dataclass
class Rig:
    store: Store
    mail: MailStore
    clock: FakeClock
    mailbox: Mailbox
    port: int

    def mailer(self, port: int | None = None) -> Mailer:
        config = SmtpConfig("127.0.0.1", port or self.port, "none", timeout=5)
        return Mailer(
            self.store,
            self.mail,
            SoleLeadership(),
            SmtpTransport(config),
            Renderer(BASE),
            self.clock,
            limits=MailerLimits(concurrency=2, timeout=5),
        )

    async def member(self, email: str) -> None:
        """Make ``email`` a user and a member of Acme."""
        accounts = accounts_for(self.store)
        found = await accounts.create_user(user(email, self.clock()))
        await accounts.add_membership(Membership(ACME, found.id, Role.MEMBER, self.clock()))

    async def enqueue(self, creator: str | None = ALICE, **fields: Any) -> Job:
        job = new_job(
            "cnpj.lookup",
            {"cnpj": "1"},
            tenant_id=ACME,
            created_by=creator,
            now=self.clock(),
            **fields,
        )
        [stored] = await self.store.enqueue([job])
        return stored

    async def run(self, state: JobState, error: str | None = None) -> Job:
        """Claim the next job and end its attempt in ``state``."""
        [job] = await self.store.claim(ACME, "default", "w1", 1, 60.0)
        event = {
            JobState.COMPLETED: EventType.JOB_SUCCEEDED,
            JobState.RETRYABLE: EventType.JOB_RETRYING,
            JobState.DISCARDED: EventType.JOB_DISCARDED,
        }[state]
        info = ErrorInfo("LookupError", error) if error else None
        run_at = self.clock() if state is JobState.RETRYABLE else None
        finish = Finish(job.id, job.attempt, state, event, run_at=run_at, error=info)
        assert await self.store.finish([finish]) == [True]
        return job


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
async def rig(store: Store, mailbox: tuple[Mailbox, int]) -> Rig:
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    store.clock = clock
    await reset_mail(store)
    await accounts_for(store).create_tenant(
        Tenant(ACME, "Acme", TenantStatus.ACTIVE, False, clock())
    )
    return Rig(store, mail_for(store), clock, *mailbox)


async def rounds(mailer: Mailer, times: int = 3) -> None:
    for _ in range(times):
        await mailer.run_once()
        await mailer.drain()


async def test_one_start_and_one_finish_mail_per_job_even_with_retries(rig: Rig) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started", "succeeded", "failed"], ["owner"])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    await rig.member(ALICE)
    mailer = rig.mailer()
    job = await rig.enqueue(key="12345678000190")
    await rig.run(JobState.RETRYABLE, "timeout")
    await rounds(mailer)
    await rig.store.promote_due()
    await rig.run(JobState.COMPLETED)
    await rounds(mailer)
    await rounds(mailer)  # reading again changes nothing
    mails = rig.mailbox.to(ALICE)
    assert [m["Subject"] for m in mails] == [
        f"[Conveyor] Job #{job.id} started: cnpj.lookup (12345678000190)",
        f"[Conveyor] Job #{job.id} succeeded: cnpj.lookup (12345678000190)",
    ]
    started, finished = (Mailbox.text(m) for m in mails)
    assert "has started" in started and "success" in finished and started != finished
    assert f"{BASE}/jobs/{job.id}" in started and '"cnpj": "1"' in started


async def test_a_failed_job_mails_its_error_and_a_job_without_creator_mails_nobody(
    rig: Rig,
) -> None:
    spec = rule_spec("task:cnpj.lookup", ["failed"], ["owner", "ops@acme.test"])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    await rig.member(ALICE)
    await rig.enqueue()
    await rig.run(JobState.DISCARDED, "CNPJ not found")
    await rig.enqueue(creator=None)
    await rig.run(JobState.DISCARDED, "again")
    await rounds(rig.mailer())
    [to_alice] = rig.mailbox.to(ALICE)
    assert "failed" in to_alice["Subject"]
    assert "LookupError: CNPJ not found" in Mailbox.text(to_alice)
    assert "CNPJ not found" in Mailbox.html(to_alice)
    assert len(rig.mailbox.to("ops@acme.test")) == 2


async def test_mail_waits_while_the_smtp_server_is_down_then_is_delivered(rig: Rig) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    down = rig.mailer(port=free_port())
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    await rounds(down, 2)
    [queued] = await rig.mail.list_outbox(ACME, 10)
    assert queued.state is MailState.PENDING and queued.attempts == 1
    assert "connect" in queued.last_error.lower()
    rig.clock.advance(3600)
    await rounds(rig.mailer())
    assert len(rig.mailbox.to(BOB)) == 1
    [sent] = await rig.mail.list_outbox(ACME, 10)
    assert sent.state is MailState.SENT and sent.attempts == 2


async def test_a_4xx_answer_is_retried_and_a_5xx_answer_fails_the_mail(rig: Rig) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    mailer = rig.mailer()
    rig.mailbox.refuse_with = "451 try again later"
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    await rounds(mailer, 1)
    [mail] = await rig.mail.list_outbox(ACME, 10)
    assert mail.state is MailState.PENDING and "451" in mail.last_error
    rig.mailbox.refuse_with = "554 rejected for policy reasons"
    rig.clock.advance(3600)
    await rounds(mailer, 2)
    [mail] = await rig.mail.list_outbox(ACME, 10)
    assert mail.state is MailState.FAILED and "554" in mail.last_error
    assert mail.attempts == 2 and rig.mailbox.messages == []


async def test_the_daily_summary_at_19_00_goes_to_users_with_jobs_only(rig: Rig) -> None:
    accounts = accounts_for(rig.store)
    for email, zone in ((ALICE, "America/Sao_Paulo"), (BOB, "America/Sao_Paulo")):
        found = await accounts.create_user(user(email, rig.clock(), time_zone=zone))
        await accounts.add_membership(Membership(ACME, found.id, Role.MEMBER, rig.clock()))
    # 2026-06-01 12:00 UTC is 09:00 in Sao Paulo (-03): the summary is due at 22:00 UTC.
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    await rig.enqueue(key="bad")
    await rig.run(JobState.DISCARDED, "CNPJ not found")
    await rig.enqueue()
    mailer = rig.mailer()
    rig.clock.advance(9 * 3600 + 59 * 60)  # 18:59 local
    await rounds(mailer, 1)
    assert rig.mailbox.messages == []
    rig.clock.advance(60)  # 19:00 local
    await mailer.plan_summaries(force=True)
    await rounds(mailer)
    [summary] = rig.mailbox.messages
    assert summary["To"] == ALICE and "3 jobs, 1 failed" in summary["Subject"]
    text = Mailbox.text(summary)
    assert "completed  1" in text and "discarded  1" in text and "available  1" in text
    assert "cnpj.lookup (bad): CNPJ not found" in text
    rig.clock.advance(3600)
    await mailer.plan_summaries(force=True)
    await rounds(mailer)
    assert len(rig.mailbox.messages) == 1  # once per local day


async def test_a_user_may_move_or_turn_off_the_summary(rig: Rig) -> None:
    accounts = accounts_for(rig.store)
    alice = await accounts.create_user(user(ALICE, rig.clock()))
    await accounts.add_membership(Membership(ACME, alice.id, Role.OWNER, rig.clock()))
    await rig.enqueue()
    await rig.mail.set_preferences(alice.id, MailPreferences("UTC", time(13, 0)), rig.clock())
    mailer = rig.mailer()
    rig.clock.advance(3600)  # 13:00 UTC
    await rounds(mailer, 1)
    assert len(rig.mailbox.to(ALICE)) == 1
    await rig.mail.set_preferences(alice.id, MailPreferences("UTC", time(13), False), rig.clock())
    rig.clock.advance(24 * 3600)
    await rig.enqueue()
    await mailer.plan_summaries(force=True)
    await rounds(mailer)
    assert len(rig.mailbox.to(ALICE)) == 1


async def test_a_server_with_smtp_set_mails_its_jobs_start_and_end(
    migrated_url: str, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    settings = server_settings(
        migrated_url, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none", mail_interval=0.05
    )
    server = Server(settings)
    await server.start()
    try:
        await reset_mail(server.store)
        assert server.mailer is not None
        spec = rule_spec("task:cnpj.lookup", ["started", "succeeded"], ["owner"])
        await server.mail_store.add_rule("default", spec, "user:admin", server.now())
        accounts = accounts_for(server.store)
        alice = await accounts.create_user(user(ALICE, server.now()))
        await accounts.add_membership(Membership("default", alice.id, Role.MEMBER, server.now()))
        [job] = await server.store.enqueue(
            [new_job("cnpj.lookup", {"cnpj": "1"}, created_by=ALICE, now=server.now())]
        )
        [claimed] = await server.store.claim("default", "default", "w1", 1, 60.0)
        finish = Finish(claimed.id, 1, JobState.COMPLETED, EventType.JOB_SUCCEEDED, result={})
        assert await server.store.finish([finish]) == [True]
        for _ in range(100):
            if len(box.to(ALICE)) >= 2:
                break
            await anyio.sleep(0.05)
        subjects = [m["Subject"] for m in box.to(ALICE)]
        assert subjects == [
            f"[Conveyor] Job #{job.id} started: cnpj.lookup",
            f"[Conveyor] Job #{job.id} succeeded: cnpj.lookup",
        ]
    finally:
        await server.stop()


async def test_events_a_day_old_when_read_mail_nobody(rig: Rig) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    rig.clock.advance(25 * 3600)
    await rounds(rig.mailer())
    assert rig.mailbox.messages == [] and await rig.mail.list_outbox(ACME, 10) == []


async def test_a_cursor_far_behind_jumps_to_the_first_fresh_event(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    for _ in range(3):
        await rig.enqueue()
        await rig.run(JobState.COMPLETED)
    stale = await rig.store.list_events(None, 0, 1000)
    rig.clock.advance(25 * 3600)
    fresh = await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    monkeypatch.setattr("conveyor.loops.mailer.EVENT_BATCH", 2)
    reads: list[int] = []
    real_list_events = rig.store.list_events

    async def list_events(tenant_id: str | None, after: int, limit: int) -> list[Event]:
        reads.append(after)
        return await real_list_events(tenant_id, after, limit)

    monkeypatch.setattr(rig.store, "list_events", list_events)
    mailer = rig.mailer()
    assert await mailer.collect() == 1
    assert len(reads) <= 4 < len(stale)  # not two stale events a read
    [mail] = await rig.mail.list_outbox(ACME, 10)
    assert mail.job_id == fresh.id
    assert await rig.mail.cursor() > stale[-1].id


async def test_an_outcome_not_written_after_a_send_does_not_send_again_before_the_lease(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)

    async def broken(*args: object) -> bool:
        raise RuntimeError("database gone")

    monkeypatch.setattr(rig.mail, "record_attempt", broken)
    mailer = rig.mailer()
    await rounds(mailer)
    rig.clock.advance(9)  # within the lease (2 x the 5 s timeout)
    await rounds(mailer)
    assert len(rig.mailbox.to(BOB)) == 1
    [mail] = await rig.mail.list_outbox(ACME, 10)
    assert mail.state is MailState.PENDING and mail.attempts == 1


async def test_two_mailers_on_one_store_never_send_one_mail_twice(rig: Rig) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started", "succeeded"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    for _ in range(3):
        await rig.enqueue()
        await rig.run(JobState.COMPLETED)
    first, second = rig.mailer(), rig.mailer()
    await first.collect()
    await first.dispatch()
    await second.dispatch()  # reads the same pending mails before the first sends
    await first.drain()
    await second.drain()
    await rounds(first)
    await rounds(second)
    subjects = [m["Subject"] for m in rig.mailbox.to(BOB)]
    assert len(subjects) == 6 and len(set(subjects)) == 6
    assert {m.attempts for m in await rig.mail.list_outbox(ACME, 10)} == {1}


async def test_a_failing_event_is_skipped_and_the_due_mails_are_sent_all_the_same(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    first = await rig.store.list_events(None, 0, 1000)
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    real_get_job = rig.store.get_job

    async def get_job(tenant_id: str, job_id: int) -> Job:
        if job_id == first[0].job_id:
            raise RuntimeError("unexpected")
        return await real_get_job(tenant_id, job_id)

    monkeypatch.setattr(rig.store, "get_job", get_job)
    await rounds(rig.mailer(), 1)
    assert len(rig.mailbox.to(BOB)) == 1  # the second job's; the cursor moved on

    async def collect_fails() -> int:
        raise RuntimeError("store hiccup")

    mailer = rig.mailer()
    monkeypatch.setattr(mailer, "collect", collect_fails)
    await rig.mail.queue(mail_to("job:99:started:bob@acme.test", ACME, BOB, 99), rig.clock())
    await rounds(mailer, 1)
    assert len(rig.mailbox.to(BOB)) == 2


async def test_events_of_tasks_no_rule_names_read_no_job(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = rule_spec("task:other.task", ["started"], [BOB])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    await rig.enqueue()
    await rig.run(JobState.COMPLETED)
    reads: list[int] = []
    real_get_job = rig.store.get_job

    async def get_job(tenant_id: str, job_id: int) -> Job:
        reads.append(job_id)
        return await real_get_job(tenant_id, job_id)

    monkeypatch.setattr(rig.store, "get_job", get_job)
    await rounds(rig.mailer(), 1)
    assert reads == [] and await rig.mail.cursor() > 0


async def test_owner_mails_go_only_to_current_members(rig: Rig) -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], ["owner", "ops@acme.test"])
    await rig.mail.add_rule(ACME, spec, "user:alice@acme.test", rig.clock())
    await rig.member(ALICE)
    await rig.enqueue(creator=ALICE)
    await rig.run(JobState.COMPLETED)
    await rig.enqueue(creator=BOB)  # Bob left Acme (or never was in it)
    await rig.run(JobState.COMPLETED)
    await rounds(rig.mailer())
    assert len(rig.mailbox.to(ALICE)) == 1 and rig.mailbox.to(BOB) == []
    assert len(rig.mailbox.to("ops@acme.test")) == 2


async def test_a_long_summary_counts_every_job_and_lists_some(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rig.member(ALICE)
    for _ in range(3):
        await rig.enqueue()
    monkeypatch.setattr("conveyor.loops.mailer.SUMMARY_JOB_LIMIT", 2)
    rig.clock.advance(7 * 3600)  # 19:00 UTC
    await rounds(rig.mailer(), 1)
    [summary] = rig.mailbox.to(ALICE)
    assert "3 jobs, 0 failed" in summary["Subject"]
    text = Mailbox.text(summary)
    assert "available  3" in text and "... and 1 more" in text
    assert "from 2026-05-31 19:00:00 UTC to 2026-06-01 19:00:00 UTC" in text
