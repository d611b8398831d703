"""``/webhooks``: the tenant's Subscriptions, their delivery logs, redelivery, test
requests and signing secrets.

Owners only (the ``admin`` permission), as the API. A signing secret appears once: on
the page answering the form that made it (create, or rotate after its confirmation
page), never on a later page. Those pages answer the POST directly (status 200)
rather than redirecting, since nothing keeps a secret to show after a redirect. Form
input goes through the API's own request models, so a form accepts exactly what the
API accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from conveyor.domain.digits import whole_number
from conveyor.domain.errors import InvalidInput
from conveyor.domain.webhooks import ROTATION_OVERLAP, Delivery, Subscription
from conveyor.services.webhooks import WebhookService
from conveyor.web.dashboard.access import CheckedForm, Owner
from conveyor.web.dashboard.forms import (
    checked_id,
    done_message,
    problems_of,
    text,
    typed,
    validated,
)
from conveyor.web.dashboard.pages_hooks import ShownBody
from conveyor.web.dashboard.render import page, pretty_json
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import Viewer
from conveyor.web.routes.params import MAX_ID
from conveyor.web.schemas_webhooks import WebhookChange, WebhookIn, WebhookTestResult

router = dashboard_router()

PAGE_SIZE = 50
DELIVERY_BODY_SHOWN = 4 * 1024
"""The most of each delivery's body the delivery log shows (it lists many)."""
LIST_SEPARATORS = re.compile(r"[\s,]+")
DONE_MESSAGES = {
    "enabled": "The webhook is enabled.",
    "disabled": "The webhook is disabled: nothing is sent to it.",
    "redelivered": "The delivery will be sent again now.",
    "changed": "Saved.",
    "deleted": "Deleted.",
}


def webhooks_of(request: Request, viewer: Viewer) -> WebhookService:
    """The webhook use cases as the viewer may use them."""
    service: WebhookService = request.app.state.server.webhooks_for(viewer.principal)
    return service


# -- form input ------------------------------------------------------------------------


def _words(form: FormData, name: str) -> list[str]:
    """Values typed into one box, separated by commas or spaces."""
    return [word for word in LIST_SEPARATORS.split(text(form, name)) if word]


def _webhook_fields(form: FormData) -> dict[str, Any]:
    return {
        "url": text(form, "url"),
        "event_types": _words(form, "event_types"),
        "queues": _words(form, "queues"),
        "tasks": _words(form, "tasks"),
        "description": text(form, "description"),
    }


def webhook_body(form: FormData) -> WebhookIn:
    """A create form as the API's request body."""
    data = {**_webhook_fields(form), "enabled": form.get("enabled") is not None}
    return validated(WebhookIn, data)


def webhook_values(webhook: Subscription) -> dict[str, str]:
    """A Subscription as its change form shows it."""
    spec = webhook.spec
    return {
        "url": spec.url,
        "event_types": " ".join(spec.event_types),
        "queues": " ".join(spec.queues),
        "tasks": " ".join(spec.tasks),
        "description": spec.description,
    }


def _int_cursor(raw: str | None) -> int | None:
    if not raw:
        return None
    return whole_number("before", raw, 1, MAX_ID, "is not a cursor this page made")


# -- the list --------------------------------------------------------------------------


async def _with_latest(service: WebhookService) -> list[tuple[Subscription, Delivery | None]]:
    """Each Subscription with its newest delivery (if any)."""
    rows = []
    for webhook in await service.list_webhooks():
        latest = await service.deliveries(webhook.id, 1)
        rows.append((webhook, latest[0] if latest else None))
    return rows


async def _webhooks_page(
    request: Request, viewer: Viewer, status: int = 200, **context: Any
) -> Response:
    rows = await _with_latest(webhooks_of(request, viewer))
    shown: dict[str, Any] = {"errors": {}, "values": {}, **context}
    return page(
        request, "webhooks.html", viewer, status, section="webhooks", webhooks=rows, **shown
    )


@router.get("/webhooks")
async def webhook_list(request: Request, viewer: Owner) -> Response:
    """The tenant's Subscriptions and the form to add one."""
    return await _webhooks_page(request, viewer, done=done_message(request, DONE_MESSAGES))


@router.post("/webhooks")
async def create_webhook(request: Request, viewer: Owner, form: CheckedForm) -> Response:
    """Add a Subscription; the answer shows its signing secret, this once."""
    try:
        webhook = await webhooks_of(request, viewer).create(webhook_body(form).spec())
    except InvalidInput as exc:
        errors, values = problems_of(exc, "url"), typed(form)
        return await _webhooks_page(request, viewer, 400, errors=errors, values=values)
    return _secret_page(request, viewer, webhook, rotated=False)


def _secret_page(
    request: Request, viewer: Viewer, webhook: Subscription, rotated: bool
) -> Response:
    return page(
        request, "webhook_secret.html", viewer, section="webhooks", webhook=webhook, rotated=rotated
    )


# -- one webhook -----------------------------------------------------------------------


def _delivery_body(body: str) -> ShownBody:
    """A delivery's body (an event as JSON) indented for reading, capped."""
    try:
        body = pretty_json(json.loads(body))
    except (ValueError, RecursionError):
        kind = "text"
    else:
        kind = "json"
    truncated = len(body) > DELIVERY_BODY_SHOWN
    return ShownBody(kind, body[:DELIVERY_BODY_SHOWN], truncated)


async def _webhook_page(
    request: Request, viewer: Viewer, webhook_id: int, status: int = 200, **context: Any
) -> Response:
    service = webhooks_of(request, viewer)
    webhook = await service.get(checked_id("webhook", webhook_id))
    before = _int_cursor(request.query_params.get("before"))
    found = await service.deliveries(webhook.id, PAGE_SIZE, before)
    path = f"/webhooks/{webhook.id}"
    older = f"{path}?before={found[-1].id}" if len(found) == PAGE_SIZE else None
    return page(
        request,
        "webhook.html",
        viewer,
        status,
        section="webhooks",
        webhook=webhook,
        deliveries=[(d, _delivery_body(d.body)) for d in found],
        body_limit=DELIVERY_BODY_SHOWN,
        next_link=older,
        first_link=path if before else None,
        **{"errors": {}, "values": webhook_values(webhook), **context},
    )


@router.get("/webhooks/{webhook_id}")
async def webhook_page(request: Request, viewer: Owner, webhook_id: int) -> Response:
    """One Subscription, its controls and its delivery log, newest first."""
    done = done_message(request, DONE_MESSAGES)
    return await _webhook_page(request, viewer, webhook_id, done=done)


@router.post("/webhooks/{webhook_id}/edit")
async def change_webhook(
    request: Request, viewer: Owner, form: CheckedForm, webhook_id: int
) -> Response:
    """Change a Subscription's URL, filters or description."""
    try:
        changes = validated(WebhookChange, _webhook_fields(form)).changes()
        await webhooks_of(request, viewer).update(checked_id("webhook", webhook_id), changes)
    except InvalidInput as exc:
        errors, values = problems_of(exc, "url"), typed(form)
        return await _webhook_page(request, viewer, webhook_id, 400, errors=errors, values=values)
    return RedirectResponse(f"/webhooks/{webhook_id}?done=changed", status_code=303)


@router.post("/webhooks/{webhook_id}/enable")
async def enable_webhook(
    request: Request, viewer: Owner, form: CheckedForm, webhook_id: int
) -> Response:
    """Turn a Subscription on (it forgets its failures and catches up)."""
    return await _set_enabled(request, viewer, webhook_id, True)


@router.post("/webhooks/{webhook_id}/disable")
async def disable_webhook(
    request: Request, viewer: Owner, form: CheckedForm, webhook_id: int
) -> Response:
    """Turn a Subscription off: nothing is sent to it."""
    return await _set_enabled(request, viewer, webhook_id, False)


async def _set_enabled(request: Request, viewer: Viewer, webhook_id: int, on: bool) -> Response:
    changes = WebhookChange(enabled=on).changes()
    await webhooks_of(request, viewer).update(checked_id("webhook", webhook_id), changes)
    done = "enabled" if on else "disabled"
    return RedirectResponse(f"/webhooks/{webhook_id}?done={done}", status_code=303)


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(
    request: Request, viewer: Owner, form: CheckedForm, webhook_id: int
) -> Response:
    """Send a signed ``webhook.test`` request now and show what came back."""
    result = await webhooks_of(request, viewer).send_test(checked_id("webhook", webhook_id))
    return await _webhook_page(
        request, viewer, webhook_id, test_result=WebhookTestResult.of(result)
    )


@router.get("/webhooks/{webhook_id}/rotate")
async def confirm_webhook_rotate(request: Request, viewer: Owner, webhook_id: int) -> Response:
    """Ask before replacing the signing secret (so a second click cannot replace the
    secret the receiver was just given)."""
    webhook = await webhooks_of(request, viewer).get(checked_id("webhook", webhook_id))
    overlap_hours = int(ROTATION_OVERLAP.total_seconds() // 3600)
    return page(
        request,
        "webhook_rotate.html",
        viewer,
        section="webhooks",
        webhook=webhook,
        overlap_hours=overlap_hours,
    )


@router.post("/webhooks/{webhook_id}/rotate")
async def rotate_webhook_secret(
    request: Request, viewer: Owner, form: CheckedForm, webhook_id: int
) -> Response:
    """A new signing secret, shown this once (the old one signs for 24 more hours)."""
    webhook = await webhooks_of(request, viewer).rotate_secret(checked_id("webhook", webhook_id))
    return _secret_page(request, viewer, webhook, rotated=True)


@router.get("/webhooks/{webhook_id}/delete")
async def confirm_webhook_delete(request: Request, viewer: Owner, webhook_id: int) -> Response:
    """Ask before deleting a Subscription and its delivery log."""
    webhook = await webhooks_of(request, viewer).get(checked_id("webhook", webhook_id))
    return page(request, "webhook_delete.html", viewer, section="webhooks", webhook=webhook)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(
    request: Request, viewer: Owner, form: CheckedForm, webhook_id: int
) -> Response:
    """Delete a Subscription and its delivery log."""
    await webhooks_of(request, viewer).delete(checked_id("webhook", webhook_id))
    return RedirectResponse("/webhooks?done=deleted", status_code=303)


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request, viewer: Owner, form: CheckedForm, webhook_id: int, delivery_id: int
) -> Response:
    """Send a delivery again now, with the same ``webhook-id``."""
    service = webhooks_of(request, viewer)
    await service.redeliver(checked_id("webhook", webhook_id), checked_id("delivery", delivery_id))
    return RedirectResponse(f"/webhooks/{webhook_id}?done=redelivered", status_code=303)
