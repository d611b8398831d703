"""Request and response bodies of ``/api/v1/hooks`` and of the hooks' own URLs
(pydantic models, in the OpenAPI).

The request models keep plain types and leave the checks to the service and the
domain. A hook's URL token is in :class:`HookCreated` only (the answer to a create or
a token rotation), its secret only there and in the answer to a change that made a
new one: no read shows either.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.domain.hooks import (
    DEFAULT_DELIVERY_HEADER,
    DEFAULT_SIGNATURE_HEADER,
    HookSpec,
    IncomingHook,
    Receipt,
    VerifyScheme,
    is_json,
)
from conveyor.services.hooks import Received, Revealed
from conveyor.web.schemas import Body

RECEIVE_PATH = "/hooks/"


class HookFields(Body):
    """What every hook body may give."""

    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    verify: VerifyScheme | None = Field(
        default=None, description="How requests are checked: none, standard-webhooks, hmac-sha256"
    )
    secret: str | None = Field(
        default=None,
        max_length=512,
        description="The verification secret; left out on create: one is made (shown once)",
    )
    signature_header: str | None = Field(
        default=None, max_length=64, description="The hmac-sha256 signature's header"
    )
    delivery_header: str | None = Field(
        default=None,
        max_length=64,
        description="The header naming a delivery (deduplicated); standard-webhooks always "
        "uses the signed webhook-id",
    )
    task: str | None = Field(default=None, max_length=128, description="Enqueue this task")
    queue: str | None = Field(default=None, max_length=128)
    priority: int | None = Field(default=None, ge=0, le=9)


class HookIn(HookFields):
    """A new incoming hook."""

    name: str = Field(min_length=1, max_length=128)

    def spec(self) -> HookSpec:
        """The hook this body asks for."""
        return HookSpec(
            name=self.name,
            description=self.description or "",
            enabled=True if self.enabled is None else self.enabled,
            verify=self.verify or VerifyScheme.NONE,
            signature_header=self.signature_header or DEFAULT_SIGNATURE_HEADER,
            delivery_header=self.delivery_header or DEFAULT_DELIVERY_HEADER,
            task=self.task,
            queue=self.queue,
            priority=self.priority,
        )


class HookChange(HookFields):
    """Changes to a hook; a field left out keeps its value. ``task: null`` stops
    enqueueing (and clears queue and priority)."""

    name: str | None = Field(default=None, min_length=1, max_length=128)

    def changes(self) -> dict[str, Any]:
        """The fields given, by :class:`HookSpec` name (plus ``secret``)."""
        given = self.model_dump(exclude_unset=True)
        if "task" in given and given["task"] is None:
            given.update(queue=None, priority=None)
        nullable = {"task", "queue", "priority"}
        return {k: v for k, v in given.items() if v is not None or k in nullable}


class HookOut(BaseModel):
    """An incoming hook, without its token and secret."""

    id: int
    name: str
    description: str
    enabled: bool
    verify: VerifyScheme
    signature_header: str
    delivery_header: str
    task: str | None
    queue: str | None
    priority: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, hook: IncomingHook) -> HookOut:
        """The response for ``hook``."""
        spec = hook.spec
        return cls(
            id=hook.id,
            name=spec.name,
            description=spec.description,
            enabled=spec.enabled,
            verify=spec.verify,
            signature_header=spec.signature_header,
            delivery_header=spec.delivery_header,
            task=spec.task,
            queue=spec.queue,
            priority=spec.priority,
            created_at=hook.created_at,
            updated_at=hook.updated_at,
        )


class HookCreated(HookOut):
    """A hook with what is shown this once: keep it."""

    token: str | None = Field(default=None, description="The secret part of the URL")
    url: str | None = Field(default=None, description="Where senders POST (or PUT)")
    secret: str | None = Field(default=None, description="The verification secret")

    @classmethod
    def revealing(cls, revealed: Revealed, base_url: str) -> HookCreated:
        """The response for ``revealed``; ``base_url`` is the server's public address."""
        shown = HookOut.of(revealed.hook).model_dump()
        url = None
        if revealed.token is not None:
            url = base_url.rstrip("/") + RECEIVE_PATH + revealed.token
        return cls(**shown, token=revealed.token, url=url, secret=revealed.secret)


class ReceiptOut(BaseModel):
    """A received request, without its body."""

    id: str
    hook_id: int
    delivery_id: str | None
    method: str
    content_type: str
    size: int = Field(description="The body's length in bytes")
    ip: str = Field(description="The sender's address")
    received_at: datetime
    verified: bool = Field(description="Whether a signature was checked (and matched)")
    task: str | None
    job_id: int | None

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptOut:
        """The response for ``receipt``."""
        return cls(
            id=receipt.id,
            hook_id=receipt.hook_id,
            delivery_id=receipt.delivery_id,
            method=receipt.method,
            content_type=receipt.content_type,
            size=receipt.size,
            ip=receipt.ip,
            received_at=receipt.received_at,
            verified=receipt.verified,
            task=receipt.task,
            job_id=receipt.job_id,
        )


class ReceiptDetail(ReceiptOut):
    """A received request with its headers and body."""

    headers: list[tuple[str, str]] = Field(
        description="In order, as received; Authorization, Proxy-Authorization, Cookie and "
        "X-API-Key values redacted"
    )
    body_encoding: str = Field(description="``utf-8`` (body is the text) or ``base64``")
    body: str
    json_body: Any = Field(default=None, description="The parsed body, when it is JSON")

    @classmethod
    def with_body(cls, receipt: Receipt, body: bytes) -> ReceiptDetail:
        """The response for ``receipt`` and its ``body``."""
        shown = ReceiptOut.of(receipt).model_dump()
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode(), "base64"
        parsed = None
        if encoding == "utf-8" and is_json(receipt.content_type):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None
        return cls(
            **shown,
            headers=list(receipt.headers),
            body_encoding=encoding,
            body=text,
            json_body=parsed,
        )


class ReceiptPage(BaseModel):
    """Receipts, newest first; pass ``next_cursor`` as ``before`` for older ones."""

    items: list[ReceiptOut]
    next_cursor: str | None


class ReceivedOut(BaseModel):
    """What a sender gets back: the receipt, its job, and whether it was a redelivery."""

    receipt_id: str
    job_id: int | None
    duplicate: bool

    @classmethod
    def of(cls, received: Received) -> ReceivedOut:
        """The response for ``received``."""
        return cls(
            receipt_id=received.receipt.id,
            job_id=received.job_id,
            duplicate=received.duplicate,
        )
