"""``/api/v1/hooks``: a tenant's incoming hooks and the requests they received.

Owners (and ``admin`` keys) create, change, rotate and delete hooks; members (and keys
that may read jobs) read hooks and receipts; agents get 403. The hooks' own URLs are
served by :mod:`conveyor.web.routes.hook_receiver`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime

from conveyor.domain.hooks import ReceiptFilter
from conveyor.services.hooks import HookService
from conveyor.web.auth import Caller, server_of
from conveyor.web.routes.params import MAX_ID, Limit
from conveyor.web.schemas_hooks import (
    HookChange,
    HookCreated,
    HookIn,
    HookOut,
    ReceiptDetail,
    ReceiptOut,
    ReceiptPage,
)

router = APIRouter(tags=["incoming hooks"])

HookId = Annotated[int, Path(ge=1, le=MAX_ID, description="A hook id")]
ReceiptId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$", description="A receipt id")
]
Before = Annotated[
    str | None,
    Query(
        max_length=64, pattern=r"^[0-9a-f]+$", description="``next_cursor`` of the previous page"
    ),
]
DeliveryId = Annotated[
    str | None, Query(min_length=1, max_length=200, description="Only this delivery id")
]
Since = Annotated[
    AwareDatetime | None,
    Query(description="Received at or after this time (with a UTC offset, e.g. ``Z``)"),
]
Until = Annotated[
    AwareDatetime | None,
    Query(description="Received before this time (with a UTC offset, e.g. ``Z``)"),
]


async def hook_service(request: Request, principal: Caller) -> HookService:
    """Hook use cases for the caller (each checks the caller's permissions)."""
    return server_of(request).hooks_for(principal)


Hooks = Annotated[HookService, Depends(hook_service)]


def _base_url(request: Request) -> str:
    return server_of(request).settings.url


@router.post("/hooks", status_code=201, summary="Create an incoming hook")
async def create_hook(body: HookIn, hooks: Hooks, request: Request) -> HookCreated:
    """Make a hook with its own secret URL. The answer holds the URL (and its token) and
    the verification secret: both are shown this once."""
    revealed = await hooks.create(body.spec(), body.secret)
    return HookCreated.revealing(revealed, _base_url(request))


@router.get("/hooks", summary="List incoming hooks")
async def list_hooks(hooks: Hooks) -> list[HookOut]:
    """The tenant's hooks, oldest first (without tokens and secrets)."""
    return [HookOut.of(h) for h in await hooks.list_hooks()]


@router.get("/hooks/{hook_id}", summary="Get an incoming hook")
async def get_hook(hook_id: HookId, hooks: Hooks) -> HookOut:
    """One hook (without its token and secret)."""
    return HookOut.of(await hooks.get(hook_id))


@router.patch("/hooks/{hook_id}", summary="Change an incoming hook")
async def change_hook(
    hook_id: HookId, body: HookChange, hooks: Hooks, request: Request
) -> HookCreated:
    """Change the fields given. A new verification scheme without a ``secret`` gets a
    fresh secret, in this answer only."""
    revealed = await hooks.update(hook_id, body.changes())
    return HookCreated.revealing(revealed, _base_url(request))


@router.delete("/hooks/{hook_id}", status_code=204, summary="Delete an incoming hook")
async def delete_hook(hook_id: HookId, hooks: Hooks) -> Response:
    """Delete a hook and every request it received; its URL answers 404."""
    await hooks.delete(hook_id)
    return Response(status_code=204)


@router.post("/hooks/{hook_id}/rotate-token", summary="Give a hook a new URL")
async def rotate_token(hook_id: HookId, hooks: Hooks, request: Request) -> HookCreated:
    """A new secret URL (shown this once); the old one answers 404 at once."""
    revealed = await hooks.rotate_token(hook_id)
    return HookCreated.revealing(revealed, _base_url(request))


@router.get("/hooks/{hook_id}/receipts", summary="Requests a hook received")
async def list_receipts(
    hook_id: HookId,
    hooks: Hooks,
    limit: Limit = 50,
    before: Before = None,
    delivery_id: DeliveryId = None,
    since: Since = None,
    until: Until = None,
) -> ReceiptPage:
    """Received requests, newest first, without their bodies."""
    filters = ReceiptFilter(limit, before, delivery_id, since, until)
    found = await hooks.receipts(hook_id, filters)
    cursor = found[-1].id if len(found) == limit else None
    return ReceiptPage(items=[ReceiptOut.of(r) for r in found], next_cursor=cursor)


@router.get("/hooks/{hook_id}/receipts/{receipt_id}", summary="One received request")
async def get_receipt(hook_id: HookId, receipt_id: ReceiptId, hooks: Hooks) -> ReceiptDetail:
    """A received request with its headers and body (as text when it is UTF-8, else
    base64; parsed too when it is JSON)."""
    receipt = await hooks.receipt(hook_id, receipt_id)
    return ReceiptDetail.with_body(receipt, await hooks.body(hook_id, receipt_id))


@router.get(
    "/hooks/{hook_id}/receipts/{receipt_id}/body",
    summary="A received request's body",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_receipt_body(hook_id: HookId, receipt_id: ReceiptId, hooks: Hooks) -> Response:
    """The body exactly as received, with its original content type, as an attachment."""
    receipt = await hooks.receipt(hook_id, receipt_id)
    body = await hooks.body(hook_id, receipt_id)
    headers = {
        "content-type": receipt.content_type or "application/octet-stream",
        "content-disposition": f'attachment; filename="receipt-{receipt.id}.bin"',
        "x-content-type-options": "nosniff",
        "content-security-policy": "sandbox",
    }
    return Response(body, headers=headers)
