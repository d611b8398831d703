"""The Mailer: turns job events into mails by the tenants' mail rules, plans each
user's daily summary, and sends the mail outbox, on the node that leads (a lock of
its own, role ``mailer``).

Each round it (1) reads the events after its durable cursor (``Store.list_events``,
all tenants) and, in one transaction, queues a mail for each (rule, address) that
matches and moves the cursor; each mail has a dedupe key (``job:<id>:started:<to>``),
so reading an event twice never mails twice and a retried job mails its start once;
(2) queues the daily summary of each user whose local summary time has come today
(``summary:<user>:<tenant>:<date>``; the jobs of the 24 hours before that time, so
planning it late, after a restart, gives the same mail); (3) starts the due mails in
the background, at most ``concurrency`` at once, each with a timeout, so a slow SMTP
server never holds up reading events. A failed send is retried with backoff for a
day; a 5xx refusal fails the mail at once.

Before a send the mail is claimed (compare-and-set): its attempt is counted and it is
not due again for two timeouts (the lease). So two nodes that both lead for a moment,
or one node whose write of the outcome failed, do not send it again before the lease
ends. A step that fails (a broken template, the store) is logged and the round goes
on: the due mails are sent all the same.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfoNotFoundError

from conveyor.domain.errors import NotFound, StoreUnavailable
from conveyor.domain.events import Event
from conveyor.domain.mail import (
    EVENT_TYPES,
    SUMMARY_PERIOD,
    DailySummary,
    MailEvent,
    MailRule,
    MailState,
    NewMail,
    OutboxMail,
    SummaryRecipient,
    due_summary,
    job_dedupe_key,
    may_match,
    next_attempt_at,
    recipients,
    rule_matches,
    summary_dedupe_key,
)
from conveyor.loops.base import Loop
from conveyor.loops.inflight import Inflight
from conveyor.mail.rendering import Renderer
from conveyor.mail.smtp import DeliveryError, MailTransport
from conveyor.store.leadership import Leadership
from conveyor.store.mail_protocol import MailStore
from conveyor.store.protocol import Store

log = logging.getLogger("conveyor.mailer")

EVENT_BATCH = 200
SUMMARY_JOB_LIMIT = 1000
SUMMARY_CHECK = timedelta(seconds=30)
"""How often the users' summary times are looked at."""
STALE_EVENT = timedelta(hours=24)
"""An event older than this when read mails nothing (mail was off, or the servers were
down for a day): news that late is noise."""
OUTBOX_RETENTION = timedelta(days=30)
"""How long sent and failed mails stay in the outbox."""
PRUNE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class MailerLimits:
    """How hard the mailer works."""

    concurrency: int = 4
    timeout: float = 30.0


class Mailer(Loop):
    """Queues and sends mails, while this node leads."""

    name = "mailer"

    def __init__(
        self,
        store: Store,
        mail: MailStore,
        leadership: Leadership,
        transport: MailTransport,
        renderer: Renderer,
        clock: Callable[[], datetime],
        interval: float = 1.0,
        limits: MailerLimits | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.mail = mail
        self.leadership = leadership
        self.transport = transport
        self.renderer = renderer
        self.clock = clock
        self.limits = limits or MailerLimits()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.leading = False
        self._inflight = Inflight()
        self._summaries_checked: datetime | None = None
        self._planned: set[str] = set()
        self._pruned: datetime | None = None

    async def run_once(self) -> int:
        """Queue the mails of new events and due summaries, start the due mails (if this
        node leads); return how many of all three."""
        self.leading = await self.leadership.hold()
        if not self.leading:
            return 0
        queued = await _logged("collect", self.collect)
        queued += await _logged("plan summaries", self.plan_summaries)
        await _logged("prune", self._prune)
        return queued + await self.dispatch()

    async def _prune(self) -> int:
        now = self.clock()
        if self._pruned is None or not timedelta(0) <= now - self._pruned < PRUNE_EVERY:
            self._pruned = now
            await self.mail.prune(now - OUTBOX_RETENTION)
        return 0

    # -- events -> mails ------------------------------------------------------

    async def collect(self) -> int:
        """Queue a mail for each new event a rule wants; return how many were made."""
        made = 0
        rules: dict[str, list[MailRule]] | None = None
        members: dict[str, set[str]] = {}
        while True:
            cursor = await self.mail.cursor()
            events = await self.store.list_events(None, cursor, EVENT_BATCH)
            if not events:
                return made
            oldest = self.clock() - STALE_EVENT
            if (
                events[0].created_at < oldest
                and await self.mail.skip_stale(cursor, oldest) != cursor
            ):
                continue  # mail was off for long: on to the first event still fresh
            if rules is None:
                rules = defaultdict(list)
                for rule in await self.mail.all_rules():
                    rules[rule.tenant_id].append(rule)
            mails = await self._mails_of(events, rules, members)
            if not await self.mail.record_events(mails, cursor, events[-1].id, self.clock()):
                return made  # another node moved the cursor on
            made += len(mails)
            if len(events) < EVENT_BATCH:
                return made

    async def _mails_of(
        self,
        events: Sequence[Event],
        rules: dict[str, list[MailRule]],
        members: dict[str, set[str]],
    ) -> list[NewMail]:
        """The mails of ``events``; an event that cannot be made into mails (a template,
        an unexpected error) is logged and mails nobody. ``StoreUnavailable`` stops the
        batch instead, so its events are read again."""
        mails: list[NewMail] = []
        oldest = self.clock() - STALE_EVENT
        for event in events:
            kind = EVENT_TYPES.get(event.type)
            if kind is None or event.job_id is None or event.created_at < oldest:
                continue
            task = event.data.get("task") if isinstance(event.data, dict) else None
            wanted = [
                rule
                for rule in rules.get(event.tenant_id, ())
                if may_match(rule.spec, kind, event.job_id, task)
            ]
            if not wanted:
                continue
            try:
                mails += await self._mails_of_job(
                    event.tenant_id, event.job_id, kind, wanted, members
                )
            except StoreUnavailable:
                raise  # the round stops before the cursor moves: read again later
            except Exception:
                log.exception("event %d: no mail made", event.id)
        return mails

    async def _mails_of_job(
        self,
        tenant_id: str,
        job_id: int,
        kind: MailEvent,
        rules: Sequence[MailRule],
        members: dict[str, set[str]],
    ) -> list[NewMail]:
        """The mails ``rules`` want of ``kind`` of a job; ``members`` caches each
        tenant's member addresses (who ``owner`` may be) over a round."""
        try:
            job = await self.store.get_job(tenant_id, job_id)
        except NotFound:
            return []
        if tenant_id not in members:
            members[tenant_id] = await self.mail.member_emails(tenant_id)
        addresses: list[str] = []
        for rule in rules:
            if rule_matches(rule.spec, job, kind):
                addresses += recipients(rule.spec, job, members[tenant_id])
        if not addresses:
            return []
        content = self.renderer.job_mail(kind, job)
        return [
            NewMail(
                tenant_id,
                job_dedupe_key(job.id, kind, address),
                f"job.{kind.value}",
                job.id,
                address,
                content,
            )
            for address in dict.fromkeys(addresses)
        ]

    # -- daily summaries ------------------------------------------------------

    async def plan_summaries(self, force: bool = False) -> int:
        """Queue the summaries whose time has come today; return how many were queued.
        Looks at most every :data:`SUMMARY_CHECK` unless ``force``."""
        now = self.clock()
        last = self._summaries_checked
        if not force and last is not None and timedelta(0) <= now - last < SUMMARY_CHECK:
            return 0
        self._summaries_checked = now
        if len(self._planned) > 100_000:
            self._planned.clear()
        queued = 0
        for recipient in await self.mail.summary_recipients():
            queued += await self._plan_summary(recipient, now)
        return queued

    async def _plan_summary(self, recipient: SummaryRecipient, now: datetime) -> int:
        try:
            due = due_summary(now, recipient.preferences)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            log.warning("user %s: unknown time zone; no summary", recipient.user_id)
            return 0
        if due is None:
            return 0
        local_date, until = due
        key = summary_dedupe_key(recipient.user_id, recipient.tenant_id, local_date)
        if key in self._planned or await self.mail.exists(key):
            self._planned.add(key)
            return 0
        since = until - SUMMARY_PERIOD
        tenant_id, email = recipient.tenant_id, recipient.email
        counts = await self.mail.summary_counts(tenant_id, email, since, until)
        self._planned.add(key)
        if not counts:
            return 0
        jobs = await self.mail.summary_jobs(tenant_id, email, since, until, SUMMARY_JOB_LIMIT)
        summary = DailySummary(
            tenant_id,
            email,
            local_date,
            since,
            until,
            tuple(jobs),
            tuple(counts.items()),
            recipient.preferences.time_zone,
        )
        mail = NewMail(
            recipient.tenant_id,
            key,
            "summary",
            None,
            recipient.email,
            self.renderer.summary_mail(summary),
        )
        return int(await self.mail.queue(mail, now))

    # -- sending ---------------------------------------------------------------

    async def dispatch(self) -> int:
        """Start the due mails as far as the concurrency allows; return how many."""
        room = self.limits.concurrency - len(self._inflight)
        if room <= 0:
            return 0
        due = await self._inflight.due(
            lambda: self.mail.due(self.clock(), room + len(self._inflight))
        )
        fresh = due[: self.limits.concurrency - len(self._inflight)]
        for mail in fresh:
            self._inflight.start(mail.id, self._send(mail), self.wake, f"mail-{mail.id}")
        return len(fresh)

    async def _send(self, mail: OutboxMail) -> None:
        try:
            await self.attempt(mail)
        except Exception:
            log.exception("mail %d could not be recorded", mail.id)

    async def attempt(self, mail: OutboxMail) -> MailState | None:
        """Claim one mail, send it and record the outcome; ``None`` if another node (or
        an earlier attempt whose outcome was not written) holds it."""
        now = self.clock()
        lease_until = now + timedelta(seconds=2 * self.limits.timeout)
        if not await self.mail.claim(mail.id, now, lease_until):
            return None
        error = ""
        try:
            async with asyncio.timeout(self.limits.timeout):
                await self.transport.send(mail.recipient, mail.content, f"conveyor.{mail.id}")
            state, retry_at = MailState.SENT, None
        except (DeliveryError, TimeoutError) as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            error = exc.message if isinstance(exc, DeliveryError) else "timed out"
            now = self.clock()
            retry_at = (
                None
                if permanent
                else next_attempt_at(mail.attempts + 1, mail.window_start, now, self.rng)
            )
            state = MailState.PENDING if retry_at is not None else MailState.FAILED
            log.info("mail %d attempt %d failed: %s", mail.id, mail.attempts + 1, error)
        await self.mail.record_attempt(mail.id, state, retry_at, error, self.clock())
        return state

    async def drain(self) -> None:
        """Wait for the mails in flight (tests; shutdown)."""
        await self._inflight.drain()

    async def stop(self) -> None:
        """Stop looping, let the mails in flight finish (each has a timeout), and give
        the lead up."""
        await super().stop()
        await self.drain()
        await self.leadership.release()

    async def seconds_to_wait(self) -> float:
        """Until the earliest due retry, at most ``interval``."""
        if not self.leading:
            return self.interval
        upcoming = await self.mail.next_attempt_at()
        if upcoming is None:
            return self.interval
        left = (upcoming - self.clock()).total_seconds()
        return self.interval if left <= 0 else min(self.interval, left)


async def _logged(step: str, run: Callable[[], Awaitable[int]]) -> int:
    """``run()``, or 0 if it fails (logged): one step's failure does not stop the
    others, so mail already queued is sent whatever breaks the reading of events."""
    try:
        return await run()
    except Exception:
        log.exception("mailer: %s failed; going on with the round", step)
        return 0
