"""The MailStore, once for both databases.

Not a hot path: the portable queries of ``mail.sql`` run through the store's
``run_sql`` primitive, and rows become the records of :mod:`conveyor.domain.mail`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor.domain.errors import NotFound
from conveyor.domain.mail import (
    DEFAULT_SUMMARY_AT,
    MailEvent,
    MailPreferences,
    MailRule,
    MailState,
    NewMail,
    OutboxMail,
    Rendered,
    RuleSpec,
    ScopeKind,
    SummaryJob,
    SummaryRecipient,
    parse_summary_at,
)
from conveyor.store.portable import PortableStore, Row
from conveyor.store.rows import read_json

NO_ID_ABOVE = 2**62


class SqlMailStore(PortableStore):
    """The :class:`~conveyor.store.mail_protocol.MailStore` on a store's database."""

    sql_file = "mail.sql"

    async def add_rule(
        self, tenant_id: str, spec: RuleSpec, created_by: str, now: datetime
    ) -> MailRule:
        """Store a rule."""
        params = {
            "tenant_id": tenant_id,
            "scope_kind": spec.scope_kind.value,
            "scope_value": spec.scope_value,
            "on_events": json.dumps([e.value for e in spec.on]),
            "recipients": json.dumps(list(spec.to)),
            "created_by": created_by,
            "now": now,
        }
        try:
            [row] = await self._rows("insert_rule", write=True, **params)
        except NotFound:
            raise NotFound(f"tenant {tenant_id!r} does not exist") from None
        return self._rule(row)

    async def get_rule(self, tenant_id: str, rule_id: int) -> MailRule:
        """One rule, or ``NotFound``."""
        found = await self._rows("get_rule", tenant_id=tenant_id, id=rule_id)
        if not found:
            raise NotFound(f"mail rule {rule_id} does not exist")
        return self._rule(found[0])

    async def list_rules(self, tenant_id: str) -> list[MailRule]:
        """The tenant's rules, oldest first."""
        return [self._rule(r) for r in await self._rows("list_rules", tenant_id=tenant_id)]

    async def delete_rule(self, tenant_id: str, rule_id: int) -> None:
        """Delete a rule, or raise ``NotFound``."""
        if not await self._rows("delete_rule", write=True, tenant_id=tenant_id, id=rule_id):
            raise NotFound(f"mail rule {rule_id} does not exist")

    async def all_rules(self) -> list[MailRule]:
        """Every tenant's rules."""
        return [self._rule(row) for row in await self._rows("all_rules")]

    async def cursor(self) -> int:
        """The id of the last event the mailer looked at."""
        found = await self._rows("get_cursor")
        return int(found[0]["last_event_id"]) if found else 0

    async def record_events(
        self, mails: Sequence[NewMail], old: int, new: int, now: datetime
    ) -> bool:
        """Queue the mails and move the cursor, in one transaction. When the cursor has
        moved on (another node), the mails are inserted all the same: that node queued
        the same dedupe keys, so the inserts change nothing."""
        steps: list[tuple[str, dict[str, Any]]] = [
            (self._sql["advance_cursor"], {"cursor": new, "old_cursor": old})
        ]
        steps += [(self._sql["insert_mail"], _mail_params(mail, now)) for mail in mails]
        results = await self.store.run_sql(steps, write=True)
        return bool(results[0])

    async def skip_stale(self, old: int, before: datetime) -> int:
        """Move the cursor from ``old`` past the events created before ``before``;
        return where it stands (``old`` if another node moved it first)."""
        found = await self._rows("skip_stale_events", write=True, old_cursor=old, before=before)
        return int(found[0]["last_event_id"]) if found else old

    async def queue(self, mail: NewMail, now: datetime) -> bool:
        """Queue one mail; ``False`` if its dedupe key is known."""
        return bool(await self._rows("insert_mail", write=True, **_mail_params(mail, now)))

    async def exists(self, dedupe_key: str) -> bool:
        """Whether a mail with this dedupe key was queued."""
        return bool(await self._rows("mail_exists", dedupe_key=dedupe_key))

    async def due(self, now: datetime, limit: int) -> list[OutboxMail]:
        """Pending mails due at ``now``, earliest first."""
        return [self._mail(row) for row in await self._rows("due_mail", now=now, limit=limit)]

    async def claim(self, mail_id: int, now: datetime, lease_until: datetime) -> bool:
        """Count an attempt and hold the mail until ``lease_until``; ``False`` if it is
        no longer due (sent, or claimed by another node)."""
        found = await self._rows(
            "claim_mail", write=True, id=mail_id, now=now, lease_until=lease_until
        )
        return bool(found)

    async def next_attempt_at(self) -> datetime | None:
        """The earliest next attempt of any pending mail."""
        [row] = await self._rows("next_attempt_at")
        return self._time(row["next_attempt_at"])

    async def record_attempt(
        self,
        mail_id: int,
        state: MailState,
        next_at: datetime | None,
        error: str,
        now: datetime,
    ) -> bool:
        """Write an attempt's outcome."""
        params = {
            "id": mail_id,
            "state": state.value,
            "next_attempt_at": next_at if state is MailState.PENDING else None,
            "error": error,
            "sent_at": now if state is MailState.SENT else None,
            "now": now,
        }
        return bool(await self._rows("record_attempt", write=True, **params))

    async def prune(self, before: datetime) -> None:
        """Forget the sent and failed mails last changed before ``before``."""
        await self._rows("prune_outbox", write=True, before=before)

    async def list_outbox(
        self, tenant_id: str, limit: int, before: int | None = None
    ) -> list[OutboxMail]:
        """The tenant's mails, newest first."""
        found = await self._rows(
            "list_outbox", tenant_id=tenant_id, before=before or NO_ID_ABOVE, limit=limit
        )
        return [self._mail(row) for row in found]

    async def preferences(self, user_id: str) -> MailPreferences:
        """A user's summary preferences."""
        found = await self._rows("get_preferences", user_id=user_id)
        if not found:
            raise NotFound(f"user {user_id!r} does not exist")
        return _preferences(found[0])

    async def set_preferences(
        self, user_id: str, preferences: MailPreferences, now: datetime
    ) -> MailPreferences:
        """Store a user's time zone and summary preferences, in one transaction."""
        steps: list[tuple[str, dict[str, Any]]] = [
            (self._sql["set_time_zone"], {"user_id": user_id, "time_zone": preferences.time_zone}),
            (
                self._sql["upsert_preferences"],
                {
                    "user_id": user_id,
                    "summary_at": preferences.summary_at.strftime("%H:%M"),
                    "summary_enabled": preferences.summary_enabled,
                    "now": now,
                },
            ),
        ]
        results = await self.store.run_sql(steps, write=True)
        if not results[0]:
            raise NotFound(f"user {user_id!r} does not exist")
        return preferences

    async def summary_recipients(self) -> list[SummaryRecipient]:
        """Every member of every active tenant, with their preferences."""
        return [
            SummaryRecipient(row["tenant_id"], row["user_id"], row["email"], _preferences(row))
            for row in await self._rows("summary_recipients")
        ]

    async def summary_jobs(
        self, tenant_id: str, created_by: str, since: datetime, until: datetime, limit: int
    ) -> list[SummaryJob]:
        """One user's jobs in one tenant over a period, oldest first."""
        found = await self._rows(
            "summary_jobs",
            tenant_id=tenant_id,
            created_by=created_by,
            since=since,
            until=until,
            limit=limit,
        )
        return [
            SummaryJob(
                id=int(row["id"]),
                task=row["task"],
                key=row["key"],
                state=row["state"],
                error=_error_message(row["error"]),
                created_at=self.store.read_time(row["created_at"]),
            )
            for row in found
        ]

    async def summary_counts(
        self, tenant_id: str, created_by: str, since: datetime, until: datetime
    ) -> dict[str, int]:
        """How many jobs per state one user created in one tenant over a period."""
        found = await self._rows(
            "summary_counts", tenant_id=tenant_id, created_by=created_by, since=since, until=until
        )
        return {row["state"]: int(row["jobs"]) for row in found}

    async def member_emails(self, tenant_id: str) -> set[str]:
        """The addresses of the tenant's current members, lowercased."""
        found = await self._rows("member_emails", tenant_id=tenant_id)
        return {row["email"].lower() for row in found}

    def _time(self, value: Any) -> datetime | None:
        return None if value is None else self.store.read_time(value)

    def _rule(self, row: Row) -> MailRule:
        spec = RuleSpec(
            scope_kind=ScopeKind(row["scope_kind"]),
            scope_value=row["scope_value"],
            on=tuple(MailEvent(e) for e in json.loads(row["on_events"])),
            to=tuple(json.loads(row["recipients"])),
        )
        return MailRule(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            spec=spec,
            created_by=row["created_by"],
            created_at=self.store.read_time(row["created_at"]),
        )

    def _mail(self, row: Row) -> OutboxMail:
        return OutboxMail(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            dedupe_key=row["dedupe_key"],
            kind=row["kind"],
            job_id=None if row["job_id"] is None else int(row["job_id"]),
            recipient=row["recipient"],
            content=Rendered(row["subject"], row["text_body"], row["html_body"]),
            state=MailState(row["state"]),
            attempts=int(row["attempts"]),
            next_attempt_at=self._time(row["next_attempt_at"]),
            window_start=self.store.read_time(row["window_start"]),
            last_error=row["last_error"],
            sent_at=self._time(row["sent_at"]),
            created_at=self.store.read_time(row["created_at"]),
        )


def _preferences(row: Row) -> MailPreferences:
    summary_at = row["summary_at"]
    enabled = row["summary_enabled"]
    return MailPreferences(
        time_zone=row["time_zone"],
        summary_at=DEFAULT_SUMMARY_AT if summary_at is None else parse_summary_at(summary_at),
        summary_enabled=True if enabled is None else bool(enabled),
    )


def _error_message(value: Any) -> str:
    data = read_json(value) if value is not None else None
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def _mail_params(mail: NewMail, now: datetime) -> dict[str, Any]:
    return {
        "tenant_id": mail.tenant_id,
        "dedupe_key": mail.dedupe_key,
        "kind": mail.kind,
        "job_id": mail.job_id,
        "recipient": mail.recipient,
        "subject": mail.content.subject,
        "text_body": mail.content.text,
        "html_body": mail.content.html,
        "now": now,
    }
