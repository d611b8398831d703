"""Request and response bodies of ``/api/v1/mail`` and ``/api/v1/me/mail`` (pydantic
models, in the OpenAPI). The request models keep plain types and leave the checks to
the service and the domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.domain.mail import MailPreferences, MailRule, OutboxMail
from conveyor.web.schemas import Body


class MailRuleIn(Body):
    """A new mail rule."""

    scope: str = Field(max_length=200, description="``task:NAME``, ``schedule:ID`` or ``job:ID``")
    on: list[str] = Field(max_length=3, description="Any of ``started``, ``succeeded``, ``failed``")
    to: list[str] = Field(
        max_length=20,
        description="Addresses, and/or ``owner`` (whoever created the job)",
    )


class MailRuleOut(BaseModel):
    """A stored mail rule."""

    id: int
    scope: str
    on: list[str]
    to: list[str]
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, rule: MailRule) -> MailRuleOut:
        """From the domain record."""
        spec = rule.spec
        return cls(
            id=rule.id,
            scope=f"{spec.scope_kind.value}:{spec.scope_value}",
            on=[e.value for e in spec.on],
            to=list(spec.to),
            created_by=rule.created_by,
            created_at=rule.created_at,
        )


class OutboxMailOut(BaseModel):
    """A queued (or sent, or failed) mail, without its bodies."""

    id: int
    kind: str
    job_id: int | None
    recipient: str
    subject: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    sent_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, mail: OutboxMail) -> OutboxMailOut:
        """From the domain record."""
        return cls(
            id=mail.id,
            kind=mail.kind,
            job_id=mail.job_id,
            recipient=mail.recipient,
            subject=mail.content.subject,
            state=mail.state.value,
            attempts=mail.attempts,
            next_attempt_at=mail.next_attempt_at,
            last_error=mail.last_error,
            sent_at=mail.sent_at,
            created_at=mail.created_at,
        )


class OutboxPage(BaseModel):
    """One page of the outbox; pass ``next_cursor`` as ``before`` for the next."""

    items: list[OutboxMailOut]
    next_cursor: int | None


class MailPreferencesIn(Body):
    """Changes to my summary preferences; a field left out keeps its value."""

    time_zone: str | None = Field(default=None, max_length=100, description="IANA name")
    summary_at: str | None = Field(default=None, max_length=5, description="Local HH:MM")
    summary_enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given."""
        return self.model_dump(exclude_unset=True)


class MailPreferencesOut(BaseModel):
    """When I get my daily summary."""

    time_zone: str
    summary_at: str
    summary_enabled: bool

    @classmethod
    def of(cls, preferences: MailPreferences) -> MailPreferencesOut:
        """From the domain record."""
        return cls(
            time_zone=preferences.time_zone,
            summary_at=preferences.summary_at.strftime("%H:%M"),
            summary_enabled=preferences.summary_enabled,
        )
