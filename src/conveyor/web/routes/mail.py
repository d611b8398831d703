"""``/api/v1/mail``: a tenant's mail rules (owners create and delete them, members list
them) and its outbox (owners); ``/api/v1/me/mail``: my daily summary preferences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from conveyor.services.mail import MailService
from conveyor.web.auth import Caller, server_of
from conveyor.web.routes.params import MAX_ID, Limit
from conveyor.web.schemas_mail import (
    MailPreferencesIn,
    MailPreferencesOut,
    MailRuleIn,
    MailRuleOut,
    OutboxMailOut,
    OutboxPage,
)

router = APIRouter(tags=["mail"])

RuleId = Annotated[int, Path(ge=1, le=MAX_ID, description="A mail rule id")]
Before = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="``next_cursor`` of the previous page")
]


async def mail_service(request: Request, principal: Caller) -> MailService:
    """Mail use cases for the caller (each checks the permission it needs)."""
    return server_of(request).mail_for(principal)


Mail = Annotated[MailService, Depends(mail_service)]


@router.post("/mail/rules", status_code=201, summary="Create a mail rule")
async def create_rule(body: MailRuleIn, mail: Mail) -> MailRuleOut:
    """Mail the addresses (or the job's creator, ``owner``) when jobs of a task, a
    schedule or one job start, succeed or fail. Owners only."""
    return MailRuleOut.of(await mail.add_rule(body.scope, body.on, body.to))


@router.get("/mail/rules", summary="List mail rules")
async def list_rules(mail: Mail) -> list[MailRuleOut]:
    """The tenant's mail rules, oldest first."""
    return [MailRuleOut.of(rule) for rule in await mail.list_rules()]


@router.get("/mail/rules/{rule_id}", summary="Get a mail rule")
async def get_rule(rule_id: RuleId, mail: Mail) -> MailRuleOut:
    """One mail rule."""
    return MailRuleOut.of(await mail.get_rule(rule_id))


@router.delete("/mail/rules/{rule_id}", status_code=204, summary="Delete a mail rule")
async def delete_rule(rule_id: RuleId, mail: Mail) -> Response:
    """Delete a rule; mails already queued are still sent. Owners only."""
    await mail.delete_rule(rule_id)
    return Response(status_code=204)


@router.get("/mail/outbox", summary="Recent mails")
async def outbox(mail: Mail, limit: Limit = 50, before: Before = None) -> OutboxPage:
    """The tenant's mails, newest first, with their state (pending, sent, failed) and
    last error. Owners only."""
    found = await mail.outbox(limit, before)
    cursor = found[-1].id if len(found) == limit else None
    return OutboxPage(items=[OutboxMailOut.of(m) for m in found], next_cursor=cursor)


@router.get("/me/mail", summary="My mail preferences")
async def my_preferences(mail: Mail) -> MailPreferencesOut:
    """When I get my daily summary (a signed-in user only)."""
    return MailPreferencesOut.of(await mail.preferences())


@router.patch("/me/mail", summary="Change my mail preferences")
async def change_my_preferences(body: MailPreferencesIn, mail: Mail) -> MailPreferencesOut:
    """Set my time zone (IANA), my summary time (``HH:MM``, local) or turn the daily
    summary off."""
    return MailPreferencesOut.of(await mail.change_preferences(body.changes()))
