"""Outgoing webhooks: Subscriptions, their deliveries, and the pure rules about them.

Which events a Subscription wants (:func:`matches`), what is sent (:func:`event_body`),
how it is signed (Standard Webhooks, :func:`signature_header`), when a failed delivery
is tried again (:func:`next_attempt_at`) and when a Subscription is disabled
(:func:`should_disable`). Standard library only; the notifier loop does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import Event

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)
"""How long the previous secret keeps signing after a rotation."""
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
"""The waits after the first failures; later ones wait :data:`LATE_RETRY_DELAY`."""
LATE_RETRY_DELAY = timedelta(hours=3)
RETRY_WINDOW = timedelta(hours=24)
"""A delivery is retried until this long after its first attempt, then it has failed."""
JITTER = 0.1
"""Each wait is lengthened or shortened by up to this fraction."""
MAX_FILTERS = 50


class DeliveryState(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    """What a tenant asks for: where to send which events."""

    url: str
    event_types: tuple[str, ...] = ()
    """Exact types or prefixes ending in ``.*`` (``job.*``); empty: every event."""
    queues: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A stored Subscription. Its secrets never leave the service layer."""

    id: int
    tenant_id: str
    spec: SubscriptionSpec
    secret: str = field(repr=False)
    """Empty when read without its secrets (lists, edits) or when it does not open."""
    previous_secret: str | None = field(repr=False)
    previous_secret_until: datetime | None
    cursor: int
    """The id of the last event looked at (see docs/webhooks.md, "Cursor")."""
    failures: int
    """Deliveries failed in a row (reset by a success)."""
    disabled_reason: str
    created_at: datetime
    updated_at: datetime

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a delivery at ``now``: the current one, and the previous
        one during the overlap after a rotation. A Subscription read without its secrets
        (or whose secret does not open) cannot sign: an empty key would sign for anyone."""
        if not self.secret:
            raise ValueError(f"webhook {self.id} has no secret to sign with")
        found = [self.secret]
        until = self.previous_secret_until
        if self.previous_secret and until is not None and now < until:
            found.append(self.previous_secret)
        return found


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event sent (or to be sent) to one Subscription, with its latest attempt."""

    id: int
    tenant_id: str
    webhook_id: int
    event_id: int
    event_type: str
    job_id: int | None
    body: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    window_start: datetime
    status_code: int | None
    duration_ms: int | None
    response: str
    error: str
    created_at: datetime
    updated_at: datetime

    @property
    def message_id(self) -> str:
        """The ``webhook-id`` header: the same on every retry and redelivery."""
        return message_id(self.event_id)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt got back: a status (``None`` if no response) or an error."""

    status_code: int | None
    duration_ms: int
    response: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """A 2xx response: delivered."""
        return self.status_code is not None and 200 <= self.status_code < 300


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(event_id: int) -> str:
    """The ``webhook-id`` of an event's deliveries."""
    return f"evt_{event_id}"


def check_filters(field: str, values: Sequence[str]) -> tuple[str, ...]:
    """Filter values, stripped and deduplicated; ``InvalidInput`` names a bad one."""
    cleaned = tuple(dict.fromkeys(v.strip() for v in values))
    if len(cleaned) > MAX_FILTERS:
        raise InvalidInput(field, f"may name at most {MAX_FILTERS} values")
    for value in cleaned:
        if not value or len(value) > 200:
            raise InvalidInput(field, "values must be 1 to 200 characters")
        if field == "event_types" and "*" in value.removesuffix(".*"):
            raise InvalidInput(field, f"{value!r}: a wildcard may only end a prefix (job.*)")
    return cleaned


def type_matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether ``event_type`` is one of ``patterns`` (``job.*`` is a prefix; none: all)."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def matches(spec: SubscriptionSpec, event: Event) -> bool:
    """Whether a Subscription wants ``event``. A queue or task filter passes only events
    that name a matching ``queue`` or ``task`` in their data."""
    if not type_matches(spec.event_types, event.type):
        return False
    if spec.queues and event.data.get("queue") not in spec.queues:
        return False
    return not (spec.tasks and event.data.get("task") not in spec.tasks)


def event_body(event: Event) -> str:
    """The JSON a delivery carries (fixed at creation: every retry sends these bytes)."""
    document: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "tenant": event.tenant_id,
        "job_id": event.job_id,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def sign(secret: str, msg_id: str, timestamp: int, body: str | bytes) -> str:
    """One Standard Webhooks ``v1`` signature: HMAC-SHA256 of ``id.timestamp.body``
    (a ``str`` body is signed as its UTF-8 bytes)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = body.encode() if isinstance(body, str) else body
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(signing: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header: one signature per secret, space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in signing)


def request_headers(
    signing: Sequence[str], msg_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """Every header of a delivery request."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "Conveyor-Webhooks/1",
    }


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after the ``attempts``-th failed attempt, with jitter."""
    index = attempts - 1
    base = RETRY_DELAYS[index] if 0 <= index < len(RETRY_DELAYS) else LATE_RETRY_DELAY
    spread = (rng or random.Random()).uniform(-JITTER, JITTER)  # noqa: S311 - not security
    return base * (1 + spread)


def next_attempt_at(
    attempts: int, window_start: datetime, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When to try again after the ``attempts``-th failure, or ``None`` (given up: the
    retry window since ``window_start`` has passed)."""
    if now - window_start >= RETRY_WINDOW:
        return None
    return now + retry_delay(attempts, rng)


def should_disable(failures: int, limit: int) -> bool:
    """Whether ``failures`` deliveries failed in a row disable the Subscription."""
    return limit > 0 and failures >= limit
