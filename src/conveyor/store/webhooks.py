"""The WebhookStore, once for both databases.

Not a hot path: the portable queries of ``webhooks.sql`` run through the store's
``run_sql`` primitive, and rows become :class:`Subscription` and :class:`Delivery`
records here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor.domain.errors import NotFound
from conveyor.domain.events import Event, EventType
from conveyor.domain.webhooks import (
    AttemptResult,
    Delivery,
    DeliveryState,
    Subscription,
    SubscriptionSpec,
    event_body,
)
from conveyor.store.portable import PortableStore, Row
from conveyor.store.protocol import SqlSteps

NO_ID_ABOVE = 2**62


class SqlWebhookStore(PortableStore):
    """The :class:`~conveyor.store.webhooks_protocol.WebhookStore` on a store's database."""

    sql_file = "webhooks.sql"

    async def add(
        self, tenant_id: str, spec: SubscriptionSpec, secret: str, now: datetime
    ) -> Subscription:
        """Store a Subscription starting after the tenant's latest event."""
        [last] = await self._rows("latest_event", tenant_id=tenant_id)
        params = _spec_params(spec) | {
            "tenant_id": tenant_id,
            "secret": self.box.seal(secret),
            "cursor": int(last["id"]),
            "now": now,
        }
        try:
            [row] = await self._rows("insert_webhook", write=True, **params)
        except NotFound:
            raise NotFound(f"tenant {tenant_id!r} does not exist") from None
        return self._webhook(row, secrets=True)

    async def get(self, tenant_id: str, webhook_id: int, *, secrets: bool = False) -> Subscription:
        """One Subscription, or ``NotFound``; its secrets opened only if ``secrets``."""
        row = await self._one(
            "get_webhook", f"webhook {webhook_id}", tenant_id=tenant_id, id=webhook_id
        )
        return self._webhook(row, secrets=secrets)

    async def list_webhooks(self, tenant_id: str) -> list[Subscription]:
        """The tenant's Subscriptions, oldest first."""
        return [self._webhook(r) for r in await self._rows("list_webhooks", tenant_id=tenant_id)]

    async def update(
        self, tenant_id: str, webhook_id: int, spec: SubscriptionSpec, now: datetime
    ) -> Subscription:
        """Replace a Subscription's definition."""
        params = _spec_params(spec) | {"tenant_id": tenant_id, "id": webhook_id, "now": now}
        row = await self._one("update_webhook", f"webhook {webhook_id}", write=True, **params)
        return self._webhook(row)

    async def rotate(
        self, tenant_id: str, webhook_id: int, secret: str, until: datetime, now: datetime
    ) -> Subscription:
        """Sign with a new secret; the old one signs too until ``until``."""
        row = await self._one(
            "rotate_secret",
            f"webhook {webhook_id}",
            write=True,
            tenant_id=tenant_id,
            id=webhook_id,
            secret=self.box.seal(secret),
            until=until,
            now=now,
        )
        return self._webhook(row, secrets=True)

    async def delete(self, tenant_id: str, webhook_id: int) -> None:
        """Delete a Subscription (its deliveries go with it)."""
        await self._one(
            "delete_webhook",
            f"webhook {webhook_id}",
            write=True,
            tenant_id=tenant_id,
            id=webhook_id,
        )

    async def seal_secrets(self) -> int:
        """See :func:`~conveyor.store.sealing.seal_secrets`; how many it sealed."""
        return await self._seal_secrets("secret", "previous_secret")

    async def enabled(self) -> list[Subscription]:
        """Every tenant's enabled Subscriptions; one whose secret does not open (written
        with another key) is left out and logged, so the others are still sent."""
        rows = await self._rows("enabled_webhooks")
        opened = (self._webhook(row, secrets=True) for row in rows)
        return [w for w in opened if w.secret]

    async def record_events(
        self, webhook: Subscription, events: Sequence[Event], cursor: int, now: datetime
    ) -> bool:
        """Make the deliveries and move the cursor, in one transaction."""
        steps: list[tuple[str, dict[str, Any]]] = [
            (self._sql["insert_delivery"], _delivery_params(webhook, event, now))
            for event in events
        ]
        advance = {"id": webhook.id, "cursor": cursor, "old_cursor": webhook.cursor}
        steps.insert(0, (self._sql["advance_cursor"], advance))
        results = await self.store.run_sql(_as_steps(steps), write=True)
        return bool(results[0])

    async def due(self, webhook_id: int, now: datetime, limit: int) -> list[Delivery]:
        """A Subscription's pending deliveries due now, in order per job."""
        found = await self._rows("due_deliveries", webhook_id=webhook_id, now=now, limit=limit)
        return [self._delivery(row) for row in found]

    async def next_attempt_at(self) -> datetime | None:
        """The earliest next attempt of any pending delivery."""
        [row] = await self._rows("next_attempt_at")
        value = row["next_attempt_at"]
        return None if value is None else self.store.read_time(value)

    async def record_attempt(
        self, delivery: Delivery, result: AttemptResult, next_at: datetime | None, now: datetime
    ) -> int | None:
        """Write the attempt; count the Subscription's failures in a row."""
        if result.ok:
            state = DeliveryState.DELIVERED
        else:
            state = DeliveryState.PENDING if next_at is not None else DeliveryState.FAILED
        attempt = {
            "id": delivery.id,
            "state": state.value,
            "next_attempt_at": next_at if state is DeliveryState.PENDING else None,
            "status_code": result.status_code,
            "duration_ms": result.duration_ms,
            "response": result.response,
            "error": result.error,
            "now": now,
        }
        steps: list[tuple[str, dict[str, Any]]] = [(self._sql["record_attempt"], attempt)]
        if state is DeliveryState.DELIVERED:
            steps.append((self._sql["reset_failures"], {"id": delivery.webhook_id}))
        elif state is DeliveryState.FAILED:
            steps.append((self._sql["count_failure"], {"id": delivery.webhook_id}))
        results = await self.store.run_sql(_as_steps(steps), write=True)
        if state is DeliveryState.FAILED and results[-1]:
            return int(results[-1][0]["failures"])
        return None

    async def disable(self, webhook_id: int, reason: str, data: str, now: datetime) -> bool:
        """Disable a Subscription and append its event."""
        event = {
            "id": webhook_id,
            "type": EventType.WEBHOOK_DISABLED.value,
            "data": data,
            "now": now,
        }
        change = {"id": webhook_id, "enabled": False, "reason": reason, "now": now}
        steps: list[tuple[str, dict[str, Any]]] = [
            (self._sql["insert_disabled_event"], event),
            (self._sql["disable_webhook"], change),
        ]
        results = await self.store.run_sql(_as_steps(steps), write=True)
        return bool(results[-1])

    async def list_deliveries(
        self, tenant_id: str, webhook_id: int, limit: int, before: int | None = None
    ) -> list[Delivery]:
        """A Subscription's deliveries, newest first."""
        found = await self._rows(
            "list_deliveries",
            tenant_id=tenant_id,
            webhook_id=webhook_id,
            before=before or NO_ID_ABOVE,
            limit=limit,
        )
        return [self._delivery(row) for row in found]

    async def redeliver(
        self, tenant_id: str, webhook_id: int, delivery_id: int, now: datetime
    ) -> Delivery:
        """Make a delivery pending again, due now."""
        row = await self._one(
            "redeliver",
            f"delivery {delivery_id}",
            write=True,
            tenant_id=tenant_id,
            webhook_id=webhook_id,
            id=delivery_id,
            now=now,
        )
        return self._delivery(row)

    def _time(self, value: Any) -> datetime | None:
        return None if value is None else self.store.read_time(value)

    def _webhook(self, row: Row, *, secrets: bool = False) -> Subscription:
        """The Subscription of ``row``; its secrets stay sealed (empty) unless ``secrets``:
        only sending and revealing a new secret need them."""
        what = f"webhook {row['id']}"
        secret, previous = (
            (self._opened(row["secret"], what), self._opened(row["previous_secret"], what))
            if secrets
            else (None, None)
        )
        spec = SubscriptionSpec(
            url=row["url"],
            event_types=tuple(json.loads(row["event_types"])),
            queues=tuple(json.loads(row["queues"])),
            tasks=tuple(json.loads(row["tasks"])),
            enabled=bool(row["enabled"]),
            description=row["description"],
        )
        return Subscription(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            spec=spec,
            secret=secret or "",
            previous_secret=previous,
            previous_secret_until=self._time(row["previous_secret_until"]),
            cursor=int(row["last_event_id"]),
            failures=int(row["failures"]),
            disabled_reason=row["disabled_reason"],
            created_at=self.store.read_time(row["created_at"]),
            updated_at=self.store.read_time(row["updated_at"]),
        )

    def _delivery(self, row: Row) -> Delivery:
        return Delivery(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            webhook_id=int(row["webhook_id"]),
            event_id=int(row["event_id"]),
            event_type=row["event_type"],
            job_id=None if row["job_id"] is None else int(row["job_id"]),
            body=row["body"],
            state=DeliveryState(row["state"]),
            attempts=int(row["attempts"]),
            next_attempt_at=self._time(row["next_attempt_at"]),
            window_start=self.store.read_time(row["window_start"]),
            status_code=None if row["status_code"] is None else int(row["status_code"]),
            duration_ms=None if row["duration_ms"] is None else int(row["duration_ms"]),
            response=row["response"],
            error=row["error"],
            created_at=self.store.read_time(row["created_at"]),
            updated_at=self.store.read_time(row["updated_at"]),
        )


def _spec_params(spec: SubscriptionSpec) -> dict[str, Any]:
    return {
        "url": spec.url,
        "event_types": json.dumps(list(spec.event_types)),
        "queues": json.dumps(list(spec.queues)),
        "tasks": json.dumps(list(spec.tasks)),
        "enabled": spec.enabled,
        "description": spec.description,
    }


def _delivery_params(webhook: Subscription, event: Event, now: datetime) -> dict[str, Any]:
    return {
        "tenant_id": webhook.tenant_id,
        "webhook_id": webhook.id,
        "event_id": event.id,
        "event_type": event.type,
        "job_id": event.job_id,
        "body": event_body(event),
        "now": now,
    }


def _as_steps(steps: list[tuple[str, dict[str, Any]]]) -> SqlSteps:
    return steps
