"""Mail use cases: a tenant's mail rules and outbox, and a user's summary preferences.

Owners (and ``admin`` keys) create and delete rules and read the outbox (it holds
mails about any of the tenant's jobs); members (``jobs:write``) list the rules;
agents do neither. Preferences belong to a signed-in user: an API key has none.
Every use case acts on the principal's own tenant (or user) only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import InvalidInput, PermissionDenied
from conveyor.domain.mail import (
    MailPreferences,
    MailRule,
    OutboxMail,
    ScopeKind,
    check_time_zone,
    parse_summary_at,
    rule_spec,
)
from conveyor.store.mail_protocol import MailStore
from conveyor.store.protocol import Store

Clock = Callable[[], datetime]
PREFERENCE_FIELDS = frozenset({"time_zone", "summary_at", "summary_enabled"})


class MailService:
    """One tenant's mail rules and outbox, and the principal's own preferences."""

    def __init__(
        self,
        mail: MailStore,
        jobs: Store,
        principal: Principal,
        clock: Clock,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.mail = mail
        self.jobs = jobs
        self.principal = principal
        self.clock = clock
        self.on_change = on_change
        """Called after a change that may make work due (the local mailer wakes)."""

    @property
    def tenant_id(self) -> str:
        """The tenant whose rules these are: the principal's."""
        return self.principal.tenant_id

    async def add_rule(self, scope: str, on: Sequence[str], to: Sequence[str]) -> MailRule:
        """Store a rule; a ``job:ID`` scope must name one of the tenant's jobs."""
        self.principal.require(Scope.ADMIN)
        spec = rule_spec(scope, on, to)
        if spec.scope_kind is ScopeKind.JOB:
            await self.jobs.get_job(self.tenant_id, int(spec.scope_value))
        rule = await self.mail.add_rule(self.tenant_id, spec, self.principal.actor, self.clock())
        if self.on_change is not None:
            self.on_change()
        return rule

    async def list_rules(self) -> list[MailRule]:
        """The tenant's rules."""
        self.principal.require(Scope.JOBS_WRITE)
        return await self.mail.list_rules(self.tenant_id)

    async def get_rule(self, rule_id: int) -> MailRule:
        """One rule."""
        self.principal.require(Scope.JOBS_WRITE)
        return await self.mail.get_rule(self.tenant_id, rule_id)

    async def delete_rule(self, rule_id: int) -> None:
        """Delete a rule: nothing more is mailed for it."""
        self.principal.require(Scope.ADMIN)
        await self.mail.delete_rule(self.tenant_id, rule_id)

    async def outbox(self, limit: int, before: int | None = None) -> list[OutboxMail]:
        """The tenant's mails, newest first."""
        self.principal.require(Scope.ADMIN)
        return await self.mail.list_outbox(self.tenant_id, limit, before)

    def _user_id(self) -> str:
        if self.principal.user_id is None:
            raise PermissionDenied("mail preferences belong to a signed-in user, not an API key")
        return self.principal.user_id

    async def preferences(self) -> MailPreferences:
        """The signed-in user's summary preferences."""
        return await self.mail.preferences(self._user_id())

    async def change_preferences(self, changes: Mapping[str, Any]) -> MailPreferences:
        """Change the fields given (``time_zone``, ``summary_at`` ``HH:MM``,
        ``summary_enabled``)."""
        unknown = sorted(set(changes) - PREFERENCE_FIELDS)
        if unknown:
            raise InvalidInput(unknown[0], "cannot be changed")
        user_id = self._user_id()
        current = await self.mail.preferences(user_id)
        values: dict[str, Any] = {}
        if changes.get("time_zone") is not None:
            values["time_zone"] = check_time_zone(changes["time_zone"])
        if changes.get("summary_at") is not None:
            values["summary_at"] = parse_summary_at(changes["summary_at"])
        if changes.get("summary_enabled") is not None:
            values["summary_enabled"] = bool(changes["summary_enabled"])
        return await self.mail.set_preferences(user_id, replace(current, **values), self.clock())
