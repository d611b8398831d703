"""The AmqpStore, once for both databases.

Not a hot path: the portable queries of ``amqp.sql`` run through the store's
``run_sql`` primitive, and rows become :class:`AmqpRoute` records here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conveyor.domain.errors import Conflict, NotFound
from conveyor.store.amqp_protocol import AmqpRoute, Outcome, RouteCounts, RouteSpec
from conveyor.store.portable import PortableStore, Row
from conveyor.store.protocol import SqlSteps


class SqlAmqpStore(PortableStore):
    """The :class:`~conveyor.store.amqp_protocol.AmqpStore` on a store's database."""

    sql_file = "amqp.sql"

    async def add(self, tenant_id: str, spec: RouteSpec, now: datetime) -> AmqpRoute:
        """Store a route."""
        params = _spec_params(spec) | {"tenant_id": tenant_id, "now": now}
        try:
            [row] = await self._rows("insert_route", write=True, **params)
        except NotFound:
            raise NotFound(f"tenant {tenant_id!r} does not exist") from None
        except Conflict:
            raise _routed_already(spec.queue) from None
        return self._route(row)

    async def get(self, tenant_id: str, route_id: int) -> AmqpRoute:
        """One route, or ``NotFound``."""
        row = await self._one("get_route", f"route {route_id}", tenant_id=tenant_id, id=route_id)
        return self._route(row)

    async def list_routes(self, tenant_id: str) -> list[AmqpRoute]:
        """The tenant's routes, oldest first."""
        return [self._route(r) for r in await self._rows("list_routes", tenant_id=tenant_id)]

    async def update(
        self, tenant_id: str, route_id: int, spec: RouteSpec, now: datetime
    ) -> AmqpRoute:
        """Replace a route's definition."""
        params = _spec_params(spec) | {"tenant_id": tenant_id, "id": route_id, "now": now}
        try:
            row = await self._one("update_route", f"route {route_id}", write=True, **params)
        except Conflict:
            raise _routed_already(spec.queue) from None
        return self._route(row)

    async def delete(self, tenant_id: str, route_id: int) -> None:
        """Delete a route."""
        await self._one(
            "delete_route", f"route {route_id}", write=True, tenant_id=tenant_id, id=route_id
        )

    async def enabled(self) -> list[AmqpRoute]:
        """Every tenant's enabled routes."""
        return [self._route(row) for row in await self._rows("enabled_routes")]

    async def count(
        self,
        route_id: int,
        outcome: Outcome,
        error: str,
        now: datetime,
        message_id: str | None = None,
    ) -> None:
        """Count one message and its outcome (dropping a settled message's attempts)."""
        params: dict[str, Any] = {kind.value: int(kind is outcome) for kind in Outcome}
        params |= {"id": route_id, "error": error[:1000], "now": now}
        steps: SqlSteps = [(self._sql["count_message"], params)]
        if message_id is not None and outcome is not Outcome.FAILED:
            forget = {"route_id": route_id, "message_id": message_id}
            steps = [*steps, (self._sql["forget_attempts"], forget)]
        await self.store.run_sql(steps, write=True)

    async def note_error(self, route_id: int, error: str) -> None:
        """Make ``error`` the route's last error."""
        await self._rows("note_error", write=True, id=route_id, error=error[:1000])

    async def failed_attempt(self, route_id: int, message_id: str, now: datetime) -> int:
        """Count one more failed attempt at a message; return how many there were."""
        [row] = await self._rows(
            "failed_attempt", write=True, route_id=route_id, message_id=message_id, now=now
        )
        return int(row["attempts"])

    async def has_message(self, tenant_id: str, message_id: str) -> bool:
        """Whether the tenant holds a job with this ``message_id``."""
        found = await self._rows("job_with_message_id", tenant_id=tenant_id, message_id=message_id)
        return bool(found)

    async def cursor(self, name: str, now: datetime) -> int:
        """The publisher's position, made after the latest event if new."""
        steps: SqlSteps = [
            (self._sql["start_cursor"], {"name": name, "now": now}),
            (self._sql["read_cursor"], {"name": name}),
        ]
        results = await self.store.run_sql(steps, write=True)
        return int(results[-1][0]["last_event_id"])

    async def read_cursor(self, name: str) -> int | None:
        """The publisher's position, if it ever ran."""
        found = await self._rows("read_cursor", name=name)
        return int(found[0]["last_event_id"]) if found else None

    async def advance_cursor(self, name: str, old: int, new: int, now: datetime) -> bool:
        """Move the cursor on from ``old``."""
        moved = await self._rows(
            "advance_cursor", write=True, name=name, cursor=new, old_cursor=old, now=now
        )
        return bool(moved)

    def _route(self, row: Row) -> AmqpRoute:
        spec = RouteSpec(
            queue=row["queue"],
            task=row["task"],
            job_queue=row["job_queue"],
            priority=None if row["priority"] is None else int(row["priority"]),
            enabled=bool(row["enabled"]),
        )
        last = row["last_message_at"]
        counts = RouteCounts(
            received=int(row["received"]),
            accepted=int(row["accepted"]),
            duplicates=int(row["duplicates"]),
            dead_lettered=int(row["dead_lettered"]),
            failed=int(row["failed"]),
            last_error=row["last_error"],
            last_message_at=None if last is None else self.store.read_time(last),
        )
        return AmqpRoute(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            spec=spec,
            counts=counts,
            created_at=self.store.read_time(row["created_at"]),
            updated_at=self.store.read_time(row["updated_at"]),
        )


def _spec_params(spec: RouteSpec) -> dict[str, Any]:
    return {
        "queue": spec.queue,
        "task": spec.task,
        "job_queue": spec.job_queue,
        "priority": spec.priority,
        "enabled": spec.enabled,
    }


def _routed_already(queue: str) -> Conflict:
    return Conflict(f"RabbitMQ queue {queue!r} is routed already")
