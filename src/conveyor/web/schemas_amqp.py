"""Request and response bodies of ``/api/v1/amqp/routes`` (pydantic models, in the
OpenAPI). The request models keep plain types and leave the checks to the service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from conveyor.store.amqp_protocol import AmqpRoute, RouteSpec
from conveyor.web.schemas import Body


class RouteIn(Body):
    """A new route: consume a RabbitMQ queue into jobs of a task."""

    queue: str = Field(
        max_length=255,
        description="The RabbitMQ queue (an owner's must start with '<tenant id>.')",
    )
    task: str = Field(max_length=128, description="The task of the jobs made")
    job_queue: str | None = Field(
        default=None, max_length=128, description="The Conveyor queue of the jobs"
    )
    priority: int | None = Field(default=None, description="The jobs' priority (0-9)")
    enabled: bool = True

    def spec(self) -> RouteSpec:
        """The route this body asks for."""
        return RouteSpec(self.queue, self.task, self.job_queue, self.priority, self.enabled)


class RouteChange(Body):
    """Changes to a route; a field left out keeps its value (``null`` clears
    ``job_queue`` and ``priority``)."""

    queue: str | None = Field(default=None, max_length=255)
    task: str | None = Field(default=None, max_length=128)
    job_queue: str | None = Field(default=None, max_length=128)
    priority: int | None = None
    enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given (``queue``, ``task`` and ``enabled`` cannot be null)."""
        given = self.model_dump(exclude_unset=True)
        return {k: v for k, v in given.items() if v is not None or k in ("job_queue", "priority")}


class RouteCountsOut(BaseModel):
    """What the route's consumers have seen."""

    received: int
    accepted: int
    duplicates: int
    dead_lettered: int
    failed: int = Field(description="Deliveries put back on the queue after a passing failure")
    last_error: str
    last_message_at: datetime | None


class RouteOut(BaseModel):
    """A stored route with its counters."""

    id: int
    queue: str
    task: str
    job_queue: str | None
    priority: int | None
    enabled: bool
    counts: RouteCountsOut
    created_at: datetime
    updated_at: datetime
    bridge_running: bool = Field(
        description="Whether this server runs the RabbitMQ bridge (amqp_url set); "
        "if not, the route is stored but no queue is consumed"
    )

    @classmethod
    def of(cls, route: AmqpRoute, bridge_running: bool) -> RouteOut:
        """The answer for ``route``."""
        counts = route.counts
        return cls(
            id=route.id,
            queue=route.spec.queue,
            task=route.spec.task,
            job_queue=route.spec.job_queue,
            priority=route.spec.priority,
            enabled=route.spec.enabled,
            counts=RouteCountsOut(
                received=counts.received,
                accepted=counts.accepted,
                duplicates=counts.duplicates,
                dead_lettered=counts.dead_lettered,
                failed=counts.failed,
                last_error=counts.last_error,
                last_message_at=counts.last_message_at,
            ),
            created_at=route.created_at,
            updated_at=route.updated_at,
            bridge_running=bridge_running,
        )
