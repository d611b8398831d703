"""Request and response bodies of ``/api/v1/webhooks`` (pydantic models, in the OpenAPI).

The request models keep plain types and leave the checks to the service and the
domain. A Subscription's secret is in :class:`WebhookCreated` only (the answer to a
create or a rotation): no read shows it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.domain.webhooks import (
    AttemptResult,
    Delivery,
    DeliveryState,
    Subscription,
    SubscriptionSpec,
)
from conveyor.web.schemas import Body

FilterList = list[str]


class WebhookFields(Body):
    """What every webhook body may give."""

    event_types: FilterList | None = Field(
        default=None,
        max_length=50,
        description="Event types or prefixes (``job.*``); empty: every event",
    )
    queues: FilterList | None = Field(
        default=None, max_length=50, description="Only events of jobs in these queues"
    )
    tasks: FilterList | None = Field(
        default=None, max_length=50, description="Only events of jobs of these tasks"
    )
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=500)


class WebhookIn(WebhookFields):
    """A new Subscription."""

    url: str = Field(max_length=2048, description="The http or https URL to POST events to")

    def spec(self) -> SubscriptionSpec:
        """The Subscription this body asks for."""
        return SubscriptionSpec(
            url=self.url,
            event_types=tuple(self.event_types or ()),
            queues=tuple(self.queues or ()),
            tasks=tuple(self.tasks or ()),
            enabled=True if self.enabled is None else self.enabled,
            description=self.description or "",
        )


class WebhookChange(WebhookFields):
    """Changes to a Subscription; a field left out keeps its value."""

    url: str | None = Field(default=None, max_length=2048)

    def changes(self) -> dict[str, Any]:
        """The fields given, by :class:`SubscriptionSpec` name (``null`` keeps a value)."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class WebhookOut(BaseModel):
    """A Subscription, without its secret."""

    id: int
    url: str
    event_types: list[str]
    queues: list[str]
    tasks: list[str]
    enabled: bool
    description: str
    disabled_reason: str
    failures: int = Field(description="Deliveries failed in a row")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, webhook: Subscription) -> WebhookOut:
        """The response for ``webhook``."""
        spec = webhook.spec
        return cls(
            id=webhook.id,
            url=spec.url,
            event_types=list(spec.event_types),
            queues=list(spec.queues),
            tasks=list(spec.tasks),
            enabled=spec.enabled,
            description=spec.description,
            disabled_reason=webhook.disabled_reason,
            failures=webhook.failures,
            created_at=webhook.created_at,
            updated_at=webhook.updated_at,
        )


class WebhookCreated(WebhookOut):
    """A Subscription with its (new) secret: shown this once, keep it."""

    secret: str = Field(description="Verify deliveries with it (Standard Webhooks)")
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="Until when the previous secret also signs (after a rotation)"
    )

    @classmethod
    def revealing(cls, webhook: Subscription) -> WebhookCreated:
        """The response for ``webhook``, with its secret."""
        shown = WebhookOut.of(webhook).model_dump()
        return cls(
            **shown,
            secret=webhook.secret,
            previous_secret_expires_at=webhook.previous_secret_until,
        )


class DeliveryOut(BaseModel):
    """One delivery and its latest attempt."""

    id: int
    event_id: int
    event_type: str
    job_id: int | None
    message_id: str = Field(description="The ``webhook-id`` header, the same on every retry")
    state: DeliveryState
    attempts: int
    status_code: int | None
    duration_ms: int | None
    response: str = Field(description="The start of the receiver's last response")
    error: str
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        """The response for ``delivery``."""
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            job_id=delivery.job_id,
            message_id=delivery.message_id,
            state=delivery.state,
            attempts=delivery.attempts,
            status_code=delivery.status_code,
            duration_ms=delivery.duration_ms,
            response=delivery.response,
            error=delivery.error,
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at,
        )


class DeliveryPage(BaseModel):
    """Deliveries, newest first; pass ``next_cursor`` as ``before`` for older ones."""

    items: list[DeliveryOut]
    next_cursor: int | None


class WebhookTestResult(BaseModel):
    """What a test request to a Subscription's URL got back."""

    delivered: bool = Field(description="The receiver answered 2xx")
    status_code: int | None = Field(description="Its status; none without a response")
    duration_ms: int
    response: str = Field(description="The start of the receiver's response")
    error: str = Field(description="Why there was no response (refused, timeout, ...)")

    @classmethod
    def of(cls, result: AttemptResult) -> WebhookTestResult:
        """The response for ``result``."""
        return cls(
            delivered=result.ok,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            response=result.response,
            error=result.error,
        )
