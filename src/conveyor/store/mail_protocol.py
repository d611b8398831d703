"""The MailStore protocol: each tenant's mail rules, the mail outbox, the mailer's
cursor and the users' summary preferences.

Not a hot path: one portable implementation serves both databases
(:mod:`conveyor.store.mail`), held to this protocol by the contract suite. Every
method that names a tenant touches only that tenant's rows; the mailer's own methods
(:meth:`MailStore.all_rules`, :meth:`MailStore.due`, ...) serve all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from conveyor.domain.mail import (
    MailPreferences,
    MailRule,
    MailState,
    NewMail,
    OutboxMail,
    RuleSpec,
    SummaryJob,
    SummaryRecipient,
)


class MailStore(Protocol):
    """Durable storage for mail rules, the outbox and summary preferences."""

    async def add_rule(
        self, tenant_id: str, spec: RuleSpec, created_by: str, now: datetime
    ) -> MailRule:
        """Store a rule; ``NotFound`` if the tenant does not exist."""

    async def get_rule(self, tenant_id: str, rule_id: int) -> MailRule:
        """One rule, or ``NotFound``."""

    async def list_rules(self, tenant_id: str) -> list[MailRule]:
        """The tenant's rules, oldest first."""

    async def delete_rule(self, tenant_id: str, rule_id: int) -> None:
        """Delete a rule, or raise ``NotFound``."""

    async def all_rules(self) -> list[MailRule]:
        """Every tenant's rules."""

    async def cursor(self) -> int:
        """The id of the last event the mailer looked at."""

    async def record_events(
        self, mails: Sequence[NewMail], old: int, new: int, now: datetime
    ) -> bool:
        """In one transaction: queue each mail (once per dedupe key) and move the cursor
        from ``old`` to ``new``. ``False`` if someone else moved it first (the cursor
        stays; the mails are inserted all the same, which their dedupe keys make
        harmless)."""

    async def skip_stale(self, old: int, before: datetime) -> int:
        """Move the cursor from ``old`` past the events created before ``before``;
        return where it stands."""

    async def queue(self, mail: NewMail, now: datetime) -> bool:
        """Queue one mail; ``False`` if its dedupe key is known."""

    async def exists(self, dedupe_key: str) -> bool:
        """Whether a mail with this dedupe key was queued."""

    async def due(self, now: datetime, limit: int) -> list[OutboxMail]:
        """Pending mails due at ``now``, earliest first."""

    async def claim(self, mail_id: int, now: datetime, lease_until: datetime) -> bool:
        """Before a send, compare-and-set: count an attempt and keep the mail from being
        due until ``lease_until``; ``False`` if it was not due (another node has it)."""

    async def next_attempt_at(self) -> datetime | None:
        """The earliest next attempt of any pending mail."""

    async def record_attempt(
        self,
        mail_id: int,
        state: MailState,
        next_at: datetime | None,
        error: str,
        now: datetime,
    ) -> bool:
        """Write the outcome of the attempt :meth:`claim` counted (sent, pending until
        ``next_at``, or failed); ``False`` if the mail was no longer pending."""

    async def prune(self, before: datetime) -> None:
        """Forget the sent and failed mails last changed before ``before``."""

    async def list_outbox(
        self, tenant_id: str, limit: int, before: int | None = None
    ) -> list[OutboxMail]:
        """The tenant's mails, newest first, with ids below ``before``."""

    async def preferences(self, user_id: str) -> MailPreferences:
        """A user's summary preferences (the defaults if none are stored); ``NotFound``."""

    async def set_preferences(
        self, user_id: str, preferences: MailPreferences, now: datetime
    ) -> MailPreferences:
        """Store a user's summary preferences (the time zone is the user's own)."""

    async def summary_recipients(self) -> list[SummaryRecipient]:
        """Every member of every active tenant, with their preferences."""

    async def summary_jobs(
        self, tenant_id: str, created_by: str, since: datetime, until: datetime, limit: int
    ) -> list[SummaryJob]:
        """At most ``limit`` of the jobs ``created_by`` created in the tenant from
        ``since`` to before ``until``: the failed ones first, then oldest first."""

    async def summary_counts(
        self, tenant_id: str, created_by: str, since: datetime, until: datetime
    ) -> dict[str, int]:
        """How many of those jobs are in each state (all of them)."""

    async def member_emails(self, tenant_id: str) -> set[str]:
        """The addresses of the tenant's current members, lowercased."""
