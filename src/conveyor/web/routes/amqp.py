"""``/api/v1/amqp/routes``: a tenant's RabbitMQ ingress routes and their counters.
Owners (and ``admin`` keys) only; an owner routes only queues named
``<tenant id>.<anything>``, a platform admin any queue but the bridge's own. Each
route answered carries ``bridge_running`` (whether this server runs the bridge)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from conveyor.amqp.routes import AmqpRouteService
from conveyor.web.auth import Owner, server_of
from conveyor.web.routes.params import MAX_ID
from conveyor.web.schemas_amqp import RouteChange, RouteIn, RouteOut

router = APIRouter(tags=["amqp"])

RouteId = Annotated[int, Path(ge=1, le=MAX_ID, description="A route id")]


async def route_service(request: Request, principal: Owner) -> AmqpRouteService:
    """Route use cases for an owner of the tenant (or an ``admin`` key)."""
    return server_of(request).amqp_routes_for(principal)


Routes = Annotated[AmqpRouteService, Depends(route_service)]


@router.post("/amqp/routes", status_code=201, summary="Create a RabbitMQ route")
async def create_route(body: RouteIn, routes: Routes) -> RouteOut:
    """Consume a RabbitMQ queue into jobs of a task (within seconds, on every node)."""
    return RouteOut.of(await routes.create(body.spec()), routes.bridge_running)


@router.get("/amqp/routes", summary="List RabbitMQ routes")
async def list_routes(routes: Routes) -> list[RouteOut]:
    """The tenant's routes with their counters, oldest first."""
    return [RouteOut.of(r, routes.bridge_running) for r in await routes.list_routes()]


@router.get("/amqp/routes/{route_id}", summary="Get a RabbitMQ route")
async def get_route(route_id: RouteId, routes: Routes) -> RouteOut:
    """One route with its counters."""
    return RouteOut.of(await routes.get(route_id), routes.bridge_running)


@router.patch("/amqp/routes/{route_id}", summary="Change a RabbitMQ route")
async def change_route(route_id: RouteId, body: RouteChange, routes: Routes) -> RouteOut:
    """Change the fields given; ``enabled: false`` stops consuming the queue."""
    return RouteOut.of(await routes.update(route_id, body.changes()), routes.bridge_running)


@router.delete("/amqp/routes/{route_id}", status_code=204, summary="Delete a RabbitMQ route")
async def delete_route(route_id: RouteId, routes: Routes) -> Response:
    """Stop consuming the queue (its messages stay in RabbitMQ) and forget the route."""
    await routes.delete(route_id)
    return Response(status_code=204)
