"""``/api/v1/webhooks``: a tenant's outgoing webhook Subscriptions, their delivery log,
redelivery and secret rotation. Owners (and ``admin`` keys) only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from conveyor.services.webhooks import WebhookService
from conveyor.web.auth import Owner, server_of
from conveyor.web.routes.params import MAX_ID, Limit
from conveyor.web.schemas_webhooks import (
    DeliveryOut,
    DeliveryPage,
    WebhookChange,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookTestResult,
)

router = APIRouter(tags=["webhooks"])

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="A webhook id")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="A delivery id")]
Before = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="``next_cursor`` of the previous page")
]


async def webhook_service(request: Request, principal: Owner) -> WebhookService:
    """Webhook use cases for an owner of the tenant (or an ``admin`` key)."""
    return server_of(request).webhooks_for(principal)


Webhooks = Annotated[WebhookService, Depends(webhook_service)]


@router.post("/webhooks", status_code=201, summary="Create a webhook")
async def create_webhook(body: WebhookIn, webhooks: Webhooks) -> WebhookCreated:
    """Subscribe a URL to the tenant's events from now on. The answer holds the signing
    secret: it is shown this once."""
    return WebhookCreated.revealing(await webhooks.create(body.spec()))


@router.get("/webhooks", summary="List webhooks")
async def list_webhooks(webhooks: Webhooks) -> list[WebhookOut]:
    """The tenant's Subscriptions, oldest first (without their secrets)."""
    return [WebhookOut.of(w) for w in await webhooks.list_webhooks()]


@router.get("/webhooks/{webhook_id}", summary="Get a webhook")
async def get_webhook(webhook_id: WebhookId, webhooks: Webhooks) -> WebhookOut:
    """One Subscription (without its secret)."""
    return WebhookOut.of(await webhooks.get(webhook_id))


@router.patch("/webhooks/{webhook_id}", summary="Change a webhook")
async def change_webhook(
    webhook_id: WebhookId, body: WebhookChange, webhooks: Webhooks
) -> WebhookOut:
    """Change the fields given; ``enabled: true`` turns a disabled Subscription back on
    and forgets its failures."""
    return WebhookOut.of(await webhooks.update(webhook_id, body.changes()))


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook")
async def delete_webhook(webhook_id: WebhookId, webhooks: Webhooks) -> Response:
    """Delete a Subscription and its delivery log; nothing more is sent."""
    await webhooks.delete(webhook_id)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/rotate-secret", summary="Rotate a webhook's secret")
async def rotate_secret(webhook_id: WebhookId, webhooks: Webhooks) -> WebhookCreated:
    """Sign with a new secret (shown this once). For 24 hours deliveries carry a
    signature by the old secret too, so receivers can switch without missing one."""
    return WebhookCreated.revealing(await webhooks.rotate_secret(webhook_id))


@router.get("/webhooks/{webhook_id}/deliveries", summary="A webhook's delivery log")
async def list_deliveries(
    webhook_id: WebhookId, webhooks: Webhooks, limit: Limit = 50, before: Before = None
) -> DeliveryPage:
    """Deliveries, newest first, each with its latest attempt."""
    found = await webhooks.deliveries(webhook_id, limit, before)
    cursor = found[-1].id if len(found) == limit else None
    return DeliveryPage(items=[DeliveryOut.of(d) for d in found], next_cursor=cursor)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", summary="Send a delivery again"
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, webhooks: Webhooks
) -> DeliveryOut:
    """Send a delivery again now, with the same ``webhook-id`` (receivers deduplicate
    by it); a failure is retried for another day."""
    return DeliveryOut.of(await webhooks.redeliver(webhook_id, delivery_id))


@router.post("/webhooks/{webhook_id}/test", summary="Send a test request")
async def send_test(webhook_id: WebhookId, webhooks: Webhooks) -> WebhookTestResult:
    """POST a signed ``webhook.test`` request to the URL now (also when the
    Subscription is disabled) and answer what came back. Nothing is recorded or
    retried; the receiver checks the signature as for any delivery."""
    return WebhookTestResult.of(await webhooks.send_test(webhook_id))
