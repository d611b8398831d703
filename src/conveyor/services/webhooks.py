"""Webhook use cases: create, read, change, rotate and delete a tenant's Subscriptions,
read their delivery log, send a delivery again and send a signed test request.

Every use case needs ``admin`` (a tenant's owners, or an API key with that scope):
a Subscription sends the tenant's events, payloads included, to any address, so
members and agents may neither see nor change them. Every use case acts on the
principal's own tenant only. A secret is returned by :meth:`WebhookService.create`
and :meth:`WebhookService.rotate_secret` (shown once), never by a read.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import Conflict, InvalidInput
from conveyor.domain.webhooks import (
    ROTATION_OVERLAP,
    AttemptResult,
    Delivery,
    Subscription,
    SubscriptionSpec,
    check_filters,
    new_secret,
    request_headers,
)
from conveyor.net.webhook_sender import Sender
from conveyor.store.webhooks_protocol import WebhookStore

Clock = Callable[[], datetime]
MAX_URL = 2048
FILTERS = ("event_types", "queues", "tasks")
CHANGEABLE = frozenset({"url", "enabled", "description", *FILTERS})
TEST_EVENT_TYPE = "webhook.test"


def checked_spec(spec: SubscriptionSpec) -> SubscriptionSpec:
    """``spec`` with its filters cleaned; ``InvalidInput`` names a bad field."""
    check_url(spec.url)
    if len(spec.description) > 500:
        raise InvalidInput("description", "must be at most 500 characters")
    return dataclasses.replace(
        spec,
        event_types=check_filters("event_types", spec.event_types),
        queues=check_filters("queues", spec.queues),
        tasks=check_filters("tasks", spec.tasks),
    )


def check_url(url: str) -> None:
    """An ``http`` or ``https`` URL with a host (the address is checked when sending)."""
    if len(url) > MAX_URL:
        raise InvalidInput("url", f"must be at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidInput("url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url", "must be an http or https URL with a host")
    if parts.username or parts.password:
        raise InvalidInput("url", "must not carry credentials")


class WebhookService:
    """One tenant's Subscriptions, as its principal may manage them."""

    def __init__(
        self,
        store: WebhookStore,
        principal: Principal,
        clock: Clock,
        on_change: Callable[[], None] | None = None,
        sender: Sender | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.principal = principal
        self.clock = clock
        self.on_change = on_change
        """Called after a change that may make work due (the local notifier wakes)."""
        self.sender = sender
        """Sends test requests (``None``: this server sends none)."""
        self.timeout = timeout

    @property
    def tenant_id(self) -> str:
        """The tenant whose Subscriptions these are: the principal's."""
        return self.principal.tenant_id

    def _may(self) -> None:
        self.principal.require(Scope.ADMIN)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def create(self, spec: SubscriptionSpec) -> Subscription:
        """Store a Subscription; it receives the events appended from now on."""
        self._may()
        webhook = await self.store.add(
            self.tenant_id, checked_spec(spec), new_secret(), self.clock()
        )
        self._changed()
        return webhook

    async def list_webhooks(self) -> list[Subscription]:
        """The tenant's Subscriptions."""
        self._may()
        return await self.store.list_webhooks(self.tenant_id)

    async def get(self, webhook_id: int, *, secrets: bool = False) -> Subscription:
        """One Subscription; its secrets opened only if ``secrets`` (to sign with them)."""
        self._may()
        return await self.store.get(self.tenant_id, webhook_id, secrets=secrets)

    async def update(self, webhook_id: int, changes: Mapping[str, Any]) -> Subscription:
        """Change the fields given; enabling a disabled Subscription forgets its failures."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "cannot be changed")
        current = await self.get(webhook_id)
        values: dict[str, Any] = {k: tuple(v) if k in FILTERS else v for k, v in changes.items()}
        spec = checked_spec(dataclasses.replace(current.spec, **values))
        webhook = await self.store.update(self.tenant_id, webhook_id, spec, self.clock())
        self._changed()
        return webhook

    async def delete(self, webhook_id: int) -> None:
        """Delete a Subscription and its delivery log."""
        self._may()
        await self.store.delete(self.tenant_id, webhook_id)

    async def rotate_secret(self, webhook_id: int) -> Subscription:
        """Sign with a new secret; the old one keeps signing for the overlap (24 h)."""
        self._may()
        now = self.clock()
        return await self.store.rotate(
            self.tenant_id, webhook_id, new_secret(), now + ROTATION_OVERLAP, now
        )

    async def deliveries(
        self, webhook_id: int, limit: int, before: int | None = None
    ) -> list[Delivery]:
        """A Subscription's delivery log, newest first."""
        await self.get(webhook_id)
        return await self.store.list_deliveries(self.tenant_id, webhook_id, limit, before)

    async def redeliver(self, webhook_id: int, delivery_id: int) -> Delivery:
        """Send a delivery again now (same ``webhook-id``), with a fresh retry window."""
        self._may()
        delivery = await self.store.redeliver(self.tenant_id, webhook_id, delivery_id, self.clock())
        self._changed()
        return delivery

    async def send_test(self, webhook_id: int) -> AttemptResult:
        """POST a signed ``webhook.test`` request to the Subscription's URL now and say
        what came back. Nothing is recorded: it is neither an event nor a delivery."""
        webhook = await self.get(webhook_id, secrets=True)
        if self.sender is None:
            raise InvalidInput("webhook", "this server sends no webhooks (webhooks = false)")
        if not webhook.secret:
            raise Conflict(
                f"webhook {webhook_id}'s signing secret does not open with this server's key:"
                " rotate it to sign again"
            )
        now = self.clock()
        msg_id = f"msg_test_{secrets.token_hex(8)}"
        body = test_body(webhook.id, self.tenant_id, now)
        headers = request_headers(webhook.signing_secrets(now), msg_id, int(time.time()), body)
        return await self.sender(webhook.spec.url, headers, body, self.timeout)


def test_body(webhook_id: int, tenant_id: str, now: datetime) -> str:
    """What a test request carries: the shape of an event's delivery, of type
    ``webhook.test``, with no id (it is no event)."""
    document = {
        "id": None,
        "type": TEST_EVENT_TYPE,
        "tenant": tenant_id,
        "job_id": None,
        "data": {"webhook_id": webhook_id, "test": True},
        "created_at": now.isoformat(),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)
