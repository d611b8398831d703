"""Route use cases: create, read, change and delete a tenant's RabbitMQ ingress routes.

Every use case needs ``admin`` (a tenant's owners, or an API key with that scope) and
acts on the principal's own tenant only. On a shared broker a tenant's owner may only
route queues named ``<tenant id>.<anything>``; a platform admin may route any queue but
the bridge's own (the catch-all dead-letter queue, and any queue named like the
dead-letter or events exchange). No route may enqueue ``shell`` jobs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from conveyor.builtins.catalog import SHELL_TASK
from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import HIGHEST_PRIORITY, LOWEST_PRIORITY, check_name
from conveyor.store.amqp_protocol import AmqpRoute, AmqpStore, RouteSpec

Clock = Callable[[], datetime]
MAX_QUEUE_NAME = 255
"""RabbitMQ's limit on a queue name (bytes of UTF-8)."""
CHANGEABLE = frozenset({"queue", "task", "job_queue", "priority", "enabled"})


def check_rabbit_queue(name: object) -> str:
    """A RabbitMQ queue name we may consume: 1-255 bytes, printable, not ``amq.*``."""
    if not isinstance(name, str) or not name or len(_utf8(name)) > MAX_QUEUE_NAME:
        raise InvalidInput("queue", f"must be a RabbitMQ queue name of 1-{MAX_QUEUE_NAME} bytes")
    if not name.isprintable() or name != name.strip():
        raise InvalidInput("queue", "must be printable, without leading or trailing spaces")
    if name.startswith("amq."):
        raise InvalidInput("queue", "must not start with 'amq.' (RabbitMQ reserves it)")
    return name


def _utf8(name: str) -> bytes:
    try:
        return name.encode()
    except UnicodeEncodeError:
        raise InvalidInput("queue", "must be valid Unicode text") from None


def dead_letter_queue(exchange: str) -> str:
    """The catch-all queue bound to the dead-letter exchange: ``_<exchange>``. Tenant ids
    start with a letter or digit, so no tenant's ``<tenant id>.`` prefix matches it."""
    return f"_{exchange}"


def reserved_queues(dead_letter_exchange: str, events_exchange: str) -> frozenset[str]:
    """Queue names no route may consume: every tenant's dead letters, or names that
    would pass for the bridge's own exchanges."""
    return frozenset(
        {dead_letter_queue(dead_letter_exchange), dead_letter_exchange, events_exchange}
    )


DEFAULT_RESERVED = reserved_queues("conveyor.dead-letter", "conveyor.events")
"""The reserved queue names under the default settings."""


def checked_spec(spec: RouteSpec, reserved: frozenset[str] = frozenset()) -> RouteSpec:
    """``spec`` if every field is valid; ``InvalidInput`` names the first bad one."""
    check_rabbit_queue(spec.queue)
    if spec.queue in reserved:
        raise InvalidInput("queue", "is the RabbitMQ bridge's own; it cannot be routed")
    check_name("task", spec.task)
    if spec.task == SHELL_TASK:
        raise InvalidInput("task", "a RabbitMQ route cannot enqueue shell jobs")
    if spec.job_queue is not None:
        check_name("job_queue", spec.job_queue)
    priority = spec.priority
    if priority is not None and (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not HIGHEST_PRIORITY <= priority <= LOWEST_PRIORITY
    ):
        raise InvalidInput(
            "priority", f"must be a whole number from {HIGHEST_PRIORITY} to {LOWEST_PRIORITY}"
        )
    return spec


def tenant_prefix(tenant_id: str) -> str:
    """The start every queue a tenant's owner routes must have."""
    return f"{tenant_id}."


class AmqpRouteService:
    """One tenant's ingress routes, as its principal may manage them."""

    def __init__(
        self,
        store: AmqpStore,
        principal: Principal,
        clock: Clock,
        on_change: Callable[[], None] | None = None,
        reserved: frozenset[str] = DEFAULT_RESERVED,
        bridge_running: bool = False,
    ) -> None:
        self.store = store
        self.principal = principal
        self.clock = clock
        self.on_change = on_change
        """Called after a change (the local consumer looks at its routes again)."""
        self.reserved = reserved
        """Queue names no route may consume (see :func:`reserved_queues`)."""
        self.bridge_running = bridge_running
        """Whether this server runs the bridge (``amqp_url`` set); routes are kept either way."""

    @property
    def tenant_id(self) -> str:
        """The tenant whose routes these are: the principal's."""
        return self.principal.tenant_id

    def _may(self) -> None:
        self.principal.require(Scope.ADMIN)

    def _allowed(self, spec: RouteSpec) -> RouteSpec:
        checked_spec(spec, self.reserved)
        prefix = tenant_prefix(self.tenant_id)
        if not self.principal.is_admin and not spec.queue.startswith(prefix):
            raise InvalidInput(
                "queue",
                f"must start with {prefix!r}: a tenant routes only its own queues "
                "(a platform admin may route any queue)",
            )
        return spec

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def create(self, spec: RouteSpec) -> AmqpRoute:
        """Store a route; the consumers start on its queue within seconds."""
        self._may()
        route = await self.store.add(self.tenant_id, self._allowed(spec), self.clock())
        self._changed()
        return route

    async def list_routes(self) -> list[AmqpRoute]:
        """The tenant's routes with their counters."""
        self._may()
        return await self.store.list_routes(self.tenant_id)

    async def get(self, route_id: int) -> AmqpRoute:
        """One route with its counters."""
        self._may()
        return await self.store.get(self.tenant_id, route_id)

    async def update(self, route_id: int, changes: Mapping[str, Any]) -> AmqpRoute:
        """Change the fields given (``enabled: false`` stops consuming its queue)."""
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "cannot be changed")
        current = await self.get(route_id)
        spec = dataclasses.replace(current.spec, **changes)
        if spec.queue != current.spec.queue:
            spec = self._allowed(spec)
        else:
            checked_spec(spec, self.reserved)
        route = await self.store.update(self.tenant_id, route_id, spec, self.clock())
        self._changed()
        return route

    async def delete(self, route_id: int) -> None:
        """Delete a route; its queue is no longer consumed (the messages stay there)."""
        self._may()
        await self.store.delete(self.tenant_id, route_id)
        self._changed()
