"""``/incoming``: the tenant's incoming hooks and the requests they received.

The pages are for owners only. The API lets members read hooks and their receipts
too, but the dashboard shows them to owners alone, who also manage them (the
``admin`` permission). A hook's URL token, and a secret made for it, appear once: on
the page answering the form that made them (create, a new URL after its confirmation
page, or a change to a new scheme), never on a later page. Those pages answer the POST
directly (status 200) rather than redirecting, since nothing keeps a secret to show
after a redirect. Form input goes through the API's own request models, so a form
accepts exactly what the API accepts.

The hooks' own URLs are ``/hooks/<token>``: these pages live under ``/incoming`` so
that no page shares a path with the receiver (or its rate limit and log redaction).
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from conveyor.domain.errors import Conflict, InvalidInput, NotFound
from conveyor.domain.hooks import IncomingHook, Receipt, ReceiptFilter, VerifyScheme, is_json
from conveyor.services.hooks import HookService, Revealed
from conveyor.web.dashboard.access import CheckedForm, Owner
from conveyor.web.dashboard.forms import (
    checked_id,
    done_message,
    problems_of,
    text,
    typed,
    validated,
)
from conveyor.web.dashboard.render import PAGE_HEADERS, page, pretty_json
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import Viewer
from conveyor.web.schemas_hooks import HookChange, HookCreated, HookIn

router = dashboard_router()

PAGE_SIZE = 50
BODY_SHOWN = 64 * 1024
"""The most of a received body a page shows; the download gives all of it."""
RECEIPT_ID = re.compile(r"[0-9a-f]{1,64}")
OPTIONAL_FIELDS = ("verify", "secret", "signature_header", "delivery_header", "task", "queue")
DONE_MESSAGES = {"changed": "Saved.", "deleted": "Deleted."}


@dataclass(frozen=True, slots=True)
class ShownBody:
    """How a page shows a body: ``json`` (indented), ``text`` or ``binary`` (not shown)."""

    kind: str
    text: str
    truncated: bool


def hooks_of(request: Request, viewer: Viewer) -> HookService:
    """The incoming hook use cases as the viewer may use them."""
    service: HookService = request.app.state.server.hooks_for(viewer.principal)
    return service


# -- form input ------------------------------------------------------------------------


def _optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def _hook_fields(form: FormData) -> dict[str, Any]:
    """A hook form's fields; an empty box is ``None`` (the default, or no task)."""
    data: dict[str, Any] = {
        "name": text(form, "name"),
        "description": text(form, "description"),
        "enabled": form.get("enabled") is not None,
    }
    for name in OPTIONAL_FIELDS:
        data[name] = _optional(form, name)
    data["priority"] = _optional(form, "priority")
    return data


def hook_body(form: FormData) -> HookIn:
    """A create form as the API's request body."""
    return validated(HookIn, _hook_fields(form))


def hook_changes(form: FormData) -> dict[str, Any]:
    """A change form as the API's changes: an empty task stops enqueueing; other
    empty boxes keep their value."""
    return validated(HookChange, _hook_fields(form)).changes()


def hook_values(hook: IncomingHook) -> dict[str, str]:
    """A hook as its change form shows it (never its secret)."""
    spec = hook.spec
    return {
        "name": spec.name,
        "description": spec.description,
        "verify": spec.verify.value,
        "signature_header": spec.signature_header,
        "delivery_header": spec.delivery_header,
        "task": spec.task or "",
        "queue": spec.queue or "",
        "priority": "" if spec.priority is None else str(spec.priority),
        "enabled": "on" if spec.enabled else "",
    }


def _receipt_id(raw: str | None) -> str:
    if raw is None or not RECEIPT_ID.fullmatch(raw):
        raise NotFound("there is no such receipt")
    return raw


# -- the list --------------------------------------------------------------------------


async def _hooks_page(
    request: Request, viewer: Viewer, status: int = 200, **context: Any
) -> Response:
    hooks = await hooks_of(request, viewer).list_hooks()
    return page(
        request,
        "hooks.html",
        viewer,
        status,
        section="hooks",
        hooks=hooks,
        schemes=[scheme.value for scheme in VerifyScheme],
        **{"errors": {}, "values": {}, **context},
    )


@router.get("/incoming")
async def hook_list(request: Request, viewer: Owner) -> Response:
    """The tenant's incoming hooks and the form to add one."""
    return await _hooks_page(request, viewer, done=done_message(request, DONE_MESSAGES))


def _revealed_page(request: Request, viewer: Viewer, revealed: Revealed, reason: str) -> Response:
    """What was made for a hook (``added``, ``new-url`` or ``new-secret``), shown once."""
    shown = HookCreated.revealing(revealed, request.app.state.server.settings.url)
    return page(request, "hook_created.html", viewer, section="hooks", hook=shown, reason=reason)


@router.post("/incoming")
async def create_hook(request: Request, viewer: Owner, form: CheckedForm) -> Response:
    """Add a hook; the answer shows its URL (and secret), this once."""
    try:
        body = hook_body(form)
        revealed = await hooks_of(request, viewer).create(body.spec(), body.secret)
    except (InvalidInput, Conflict) as exc:
        errors, values = problems_of(exc, "name"), typed(form)
        return await _hooks_page(request, viewer, 400, errors=errors, values=values)
    return _revealed_page(request, viewer, revealed, "added")


# -- one hook --------------------------------------------------------------------------


@router.get("/incoming/{hook_id}")
async def hook_page(request: Request, viewer: Owner, hook_id: int) -> Response:
    """One hook, its controls and the requests it received, newest first."""
    return await _hook_page(request, viewer, hook_id, done=done_message(request, DONE_MESSAGES))


async def _hook_page(
    request: Request, viewer: Viewer, hook_id: int, status: int = 200, **context: Any
) -> Response:
    service = hooks_of(request, viewer)
    hook = await service.get(checked_id("hook", hook_id))
    before = request.query_params.get("before") or None
    if before is not None and not RECEIPT_ID.fullmatch(before):
        raise InvalidInput("before", "is not a cursor this page made")
    found = await service.receipts(hook.id, ReceiptFilter(limit=PAGE_SIZE, before=before))
    path = f"/incoming/{hook.id}"
    return page(
        request,
        "hook.html",
        viewer,
        status,
        section="hooks",
        hook=hook,
        receipts=found,
        next_link=f"{path}?before={found[-1].id}" if len(found) == PAGE_SIZE else None,
        first_link=path if before else None,
        schemes=[scheme.value for scheme in VerifyScheme],
        **{"errors": {}, "values": hook_values(hook), **context},
    )


@router.post("/incoming/{hook_id}/edit")
async def change_hook(request: Request, viewer: Owner, form: CheckedForm, hook_id: int) -> Response:
    """Change a hook; a new verification scheme without a secret gets a fresh one,
    shown this once."""
    try:
        changes = hook_changes(form)
        revealed = await hooks_of(request, viewer).update(checked_id("hook", hook_id), changes)
    except (InvalidInput, Conflict) as exc:
        errors, values = problems_of(exc, "name"), typed(form)
        return await _hook_page(request, viewer, hook_id, 400, errors=errors, values=values)
    if revealed.secret is not None:
        return _revealed_page(request, viewer, revealed, "new-secret")
    return RedirectResponse(f"/incoming/{hook_id}?done=changed", status_code=303)


@router.get("/incoming/{hook_id}/rotate-token")
async def confirm_hook_rotate(request: Request, viewer: Owner, hook_id: int) -> Response:
    """Ask before giving the hook a new URL (so a second click cannot replace the URL
    the sender was just given)."""
    hook = await hooks_of(request, viewer).get(checked_id("hook", hook_id))
    return page(request, "hook_rotate.html", viewer, section="hooks", hook=hook)


@router.post("/incoming/{hook_id}/rotate-token")
async def rotate_hook_token(
    request: Request, viewer: Owner, form: CheckedForm, hook_id: int
) -> Response:
    """Give the hook a new URL, shown this once; the old one stops at once."""
    revealed = await hooks_of(request, viewer).rotate_token(checked_id("hook", hook_id))
    return _revealed_page(request, viewer, revealed, "new-url")


@router.get("/incoming/{hook_id}/delete")
async def confirm_hook_delete(request: Request, viewer: Owner, hook_id: int) -> Response:
    """Ask before deleting a hook and everything it received."""
    hook = await hooks_of(request, viewer).get(checked_id("hook", hook_id))
    return page(request, "hook_delete.html", viewer, section="hooks", hook=hook)


@router.post("/incoming/{hook_id}/delete")
async def delete_hook(request: Request, viewer: Owner, form: CheckedForm, hook_id: int) -> Response:
    """Delete a hook and its receipts; its URL answers 404."""
    await hooks_of(request, viewer).delete(checked_id("hook", hook_id))
    return RedirectResponse("/incoming?done=deleted", status_code=303)


# -- what a hook received --------------------------------------------------------------


def shown_body(receipt: Receipt, body: bytes) -> ShownBody:
    """The start of ``body`` for reading: indented JSON, text, or nothing when binary."""
    truncated = len(body) > BODY_SHOWN
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # not final when cut: a character split by the cap is left out, not an error
        decoded = decoder.decode(body[:BODY_SHOWN], final=not truncated)
    except UnicodeDecodeError:
        return ShownBody("binary", "", truncated)
    if is_json(receipt.content_type) and not truncated:
        try:
            return ShownBody("json", pretty_json(json.loads(decoded)), False)
        except (ValueError, RecursionError):
            pass
    return ShownBody("text", decoded, truncated)


@router.get("/incoming/{hook_id}/receipts/{receipt_id}")
async def receipt_page(request: Request, viewer: Owner, hook_id: int, receipt_id: str) -> Response:
    """One received request: its facts, headers (credentials redacted) and body."""
    service = hooks_of(request, viewer)
    hook = await service.get(checked_id("hook", hook_id))
    receipt = await service.receipt(hook.id, _receipt_id(receipt_id))
    body = await service.body(hook.id, receipt.id)
    return page(
        request,
        "hook_receipt.html",
        viewer,
        section="hooks",
        hook=hook,
        receipt=receipt,
        body=shown_body(receipt, body),
        shown_limit=BODY_SHOWN,
    )


@router.get("/incoming/{hook_id}/receipts/{receipt_id}/body")
async def download_receipt_body(
    request: Request, viewer: Owner, hook_id: int, receipt_id: str
) -> Response:
    """The body exactly as received, as an attachment no browser renders."""
    service = hooks_of(request, viewer)
    receipt = await service.receipt(checked_id("hook", hook_id), _receipt_id(receipt_id))
    body = await service.body(receipt.hook_id, receipt.id)
    headers = {
        **PAGE_HEADERS,
        "Content-Disposition": f'attachment; filename="receipt-{receipt.id}.bin"',
        "Content-Security-Policy": "sandbox",
    }
    return Response(body, media_type="application/octet-stream", headers=headers)
