"""The AmqpStore protocol: each tenant's RabbitMQ ingress routes with their counters,
and the egress publisher's cursor.

Not a hot path: one portable implementation serves both databases
(:mod:`conveyor.store.amqp`), held to this protocol by the contract suite. Every method
that names a tenant touches only that tenant's rows; the consumer's own methods
(:meth:`AmqpStore.enabled`, :meth:`AmqpStore.count`) serve all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """What a route says: consume RabbitMQ queue ``queue`` into jobs of ``task``."""

    queue: str
    task: str
    job_queue: str | None = None
    """The Conveyor queue of the jobs; ``None``: the task's own."""
    priority: int | None = None
    """The jobs' priority; ``None``: the task's own."""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class RouteCounts:
    """What a route's consumer has seen since the route was made."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: int = 0
    """Deliveries put back on the queue after a passing failure (they come again)."""
    last_error: str = ""
    last_message_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AmqpRoute:
    """A stored route of one tenant."""

    id: int
    tenant_id: str
    spec: RouteSpec
    counts: RouteCounts
    created_at: datetime
    updated_at: datetime


EGRESS_CURSOR = "egress"
"""The name of the egress publisher's cursor (the last event it published)."""


class Outcome(StrEnum):
    """What became of one delivered message."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"
    FAILED = "failed"


class AmqpStore(Protocol):
    """Durable storage for ingress routes, their counters and the egress cursor."""

    async def add(self, tenant_id: str, spec: RouteSpec, now: datetime) -> AmqpRoute:
        """Store a route; ``Conflict`` if its RabbitMQ queue is routed already,
        ``NotFound`` if the tenant does not exist."""

    async def get(self, tenant_id: str, route_id: int) -> AmqpRoute:
        """One route, or ``NotFound``."""

    async def list_routes(self, tenant_id: str) -> list[AmqpRoute]:
        """The tenant's routes, oldest first."""

    async def update(
        self, tenant_id: str, route_id: int, spec: RouteSpec, now: datetime
    ) -> AmqpRoute:
        """Replace a route's definition (its counters stay)."""

    async def delete(self, tenant_id: str, route_id: int) -> None:
        """Delete a route, or raise ``NotFound``."""

    async def enabled(self) -> list[AmqpRoute]:
        """Every active tenant's enabled routes (a suspended tenant's are not consumed)."""

    async def count(
        self,
        route_id: int,
        outcome: Outcome,
        error: str,
        now: datetime,
        message_id: str | None = None,
    ) -> None:
        """Count one received message and its outcome; a non-empty ``error`` becomes
        the route's last error. A settled message (any outcome but ``FAILED``) given
        with its ``message_id`` has its failed attempts dropped in the same transaction."""

    async def failed_attempt(self, route_id: int, message_id: str, now: datetime) -> int:
        """Count one more failed attempt at a message; return how many there were."""

    async def note_error(self, route_id: int, error: str) -> None:
        """Make ``error`` the route's last error (nothing is counted)."""

    async def has_message(self, tenant_id: str, message_id: str) -> bool:
        """Whether the tenant holds a job with this ``message_id``."""

    async def cursor(self, name: str, now: datetime) -> int:
        """The publisher's position in the event log; a new one starts after the
        latest event."""

    async def read_cursor(self, name: str) -> int | None:
        """The publisher's position, ``None`` before it first ran."""

    async def advance_cursor(self, name: str, old: int, new: int, now: datetime) -> bool:
        """Move the cursor from ``old`` to ``new``; ``False`` if it was not at ``old``."""
