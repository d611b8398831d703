"""The WebhookStore protocol: each tenant's Subscriptions and their deliveries.

Not a hot path: one portable implementation serves both databases
(:mod:`conveyor.store.webhooks`), held to this protocol by the contract suite. Every
method that names a tenant touches only that tenant's rows; the notifier's own
methods (:meth:`WebhookStore.enabled`, :meth:`WebhookStore.due`, ...) serve all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from conveyor.domain.events import Event
from conveyor.domain.webhooks import AttemptResult, Delivery, Subscription, SubscriptionSpec


class WebhookStore(Protocol):
    """Durable storage for Subscriptions and their deliveries."""

    async def add(
        self, tenant_id: str, spec: SubscriptionSpec, secret: str, now: datetime
    ) -> Subscription:
        """Store a Subscription that starts after the tenant's latest event; ``NotFound``
        if the tenant does not exist."""

    async def get(self, tenant_id: str, webhook_id: int, *, secrets: bool = False) -> Subscription:
        """One Subscription, or ``NotFound``. Its secrets are opened only if ``secrets``
        (else empty), as in :meth:`list_webhooks` and :meth:`update`; :meth:`add`,
        :meth:`rotate` and :meth:`enabled` always open them."""

    async def list_webhooks(self, tenant_id: str) -> list[Subscription]:
        """The tenant's Subscriptions, oldest first."""

    async def update(
        self, tenant_id: str, webhook_id: int, spec: SubscriptionSpec, now: datetime
    ) -> Subscription:
        """Replace a Subscription's definition (enabling it forgets its failures)."""

    async def rotate(
        self, tenant_id: str, webhook_id: int, secret: str, until: datetime, now: datetime
    ) -> Subscription:
        """Sign with ``secret`` from now on; the old secret keeps signing until ``until``."""

    async def delete(self, tenant_id: str, webhook_id: int) -> None:
        """Delete a Subscription and its deliveries, or raise ``NotFound``."""

    async def seal_secrets(self) -> int:
        """Seal with the current key the secrets kept in plain or sealed by a
        previous key; ``WrongSecretKey`` if one opens with no key. How many it sealed."""

    async def enabled(self) -> list[Subscription]:
        """Every tenant's enabled Subscriptions."""

    async def record_events(
        self, webhook: Subscription, events: Sequence[Event], cursor: int, now: datetime
    ) -> bool:
        """In one transaction: make a pending delivery of each event (once per event),
        and move the cursor to ``cursor`` from where ``webhook`` was read. ``False`` if
        someone else moved it first (nothing is written)."""

    async def due(self, webhook_id: int, now: datetime, limit: int) -> list[Delivery]:
        """A Subscription's pending deliveries due at ``now``, none waiting behind an
        earlier pending delivery of the same job."""

    async def next_attempt_at(self) -> datetime | None:
        """The earliest next attempt of any pending delivery."""

    async def record_attempt(
        self, delivery: Delivery, result: AttemptResult, next_at: datetime | None, now: datetime
    ) -> int | None:
        """Write an attempt's outcome: delivered (2xx), pending until ``next_at``, or
        failed. For a failure, the Subscription's failures in a row after it; else
        ``None``."""

    async def disable(self, webhook_id: int, reason: str, data: str, now: datetime) -> bool:
        """Disable a Subscription and append its ``webhook.disabled`` event (``data``,
        JSON), in one transaction; ``False`` if it was not enabled."""

    async def list_deliveries(
        self, tenant_id: str, webhook_id: int, limit: int, before: int | None = None
    ) -> list[Delivery]:
        """A Subscription's deliveries, newest first, with ids below ``before``."""

    async def redeliver(
        self, tenant_id: str, webhook_id: int, delivery_id: int, now: datetime
    ) -> Delivery:
        """Make a delivery pending again, due now; ``NotFound`` if there is none."""
