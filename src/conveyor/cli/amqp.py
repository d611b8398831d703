"""``conveyor amqp ...``: the tenant's RabbitMQ ingress routes and the bridge's state.

Like ``conveyor webhooks``, these commands work on the database directly
(``--database-url``, ``--tenant``) as the local operator, who may route any queue
name (the ``<tenant id>.`` rule binds the API's owners) but the bridge's own. Messages
are consumed and events published by ``conveyor serve`` with ``amqp_url`` set, not by
these commands; ``status`` says when the settings here leave ``amqp_url`` unset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from conveyor.amqp.routes import DEFAULT_RESERVED, AmqpRouteService, reserved_queues
from conveyor.cli.context import cli_principal, console, options, run_with_store
from conveyor.cli.jobs import AsJson
from conveyor.cli.render import to_json
from conveyor.settings import Settings, load_settings
from conveyor.store import amqp_for
from conveyor.store.amqp_protocol import EGRESS_CURSOR, AmqpRoute, RouteSpec
from conveyor.store.protocol import Store

T = TypeVar("T")

amqp_app = typer.Typer(help="The RabbitMQ bridge: ingress routes and status.", no_args_is_help=True)
routes_app = typer.Typer(help="RabbitMQ queues consumed into jobs.", no_args_is_help=True)
amqp_app.add_typer(routes_app, name="routes")


BRIDGE_OFF = (
    "the bridge is off here: amqp_url is not set, so `conveyor serve` with these settings "
    "consumes no queue (routes are stored all the same)"
)


def _settings() -> Settings | None:
    """The settings of this environment, if they load (the bridge's names come from them)."""
    try:
        return load_settings()
    except Exception:
        return None


def _service(store: Store, tenant: str, settings: Settings | None) -> AmqpRouteService:
    principal = dataclasses.replace(cli_principal(tenant), is_admin=True)
    reserved = DEFAULT_RESERVED
    if settings is not None:
        reserved = reserved_queues(
            settings.amqp_dead_letter_exchange, settings.amqp_events_exchange
        )
    running = settings is not None and settings.amqp_url is not None
    return AmqpRouteService(
        amqp_for(store), principal, store.clock, reserved=reserved, bridge_running=running
    )


def _run(ctx: typer.Context, use: Callable[[AmqpRouteService], Awaitable[T]]) -> T:
    settings, tenant = _settings(), options(ctx).tenant

    async def call(store: Store) -> T:
        return await use(_service(store, tenant, settings))

    return run_with_store(ctx, call)


def _record(route: AmqpRoute) -> dict[str, Any]:
    return {
        "id": route.id,
        **dataclasses.asdict(route.spec),
        "counts": dataclasses.asdict(route.counts),
    }


def _table(routes: list[AmqpRoute]) -> Table:
    table = Table("id", "queue", "task", "on", "received/accepted/dup/dead", "last error")
    for route in routes:
        spec, counts = route.spec, route.counts
        seen = (counts.received, counts.accepted, counts.duplicates, counts.dead_lettered)
        table.add_row(
            str(route.id),
            spec.queue,
            spec.task,
            "yes" if spec.enabled else "no",
            "/".join(str(n) for n in seen),
            counts.last_error,
        )
    return table


@routes_app.command("add")
def add(
    ctx: typer.Context,
    queue: Annotated[str, typer.Argument(help="The RabbitMQ queue to consume.")],
    task: Annotated[str, typer.Argument(help="The task of the jobs made.")],
    job_queue: Annotated[str | None, typer.Option(help="The Conveyor queue of the jobs.")] = None,
    priority: Annotated[int | None, typer.Option(help="The jobs' priority (0-9).")] = None,
    as_json: AsJson = False,
) -> None:
    """Consume a RabbitMQ queue into jobs of a task."""
    spec = RouteSpec(queue, task, job_queue, priority)
    route = _run(ctx, lambda service: service.create(spec))
    if as_json:
        console.print_json(to_json(_record(route)))
        return
    console.print(f"route {route.id}: {queue} → {task}", highlight=False)


@routes_app.command("ls")
def list_routes(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The tenant's routes with their counters."""
    found = _run(ctx, lambda service: service.list_routes())
    if as_json:
        console.print_json(to_json([_record(r) for r in found]))
        return
    console.print(_table(found) if found else "no routes yet (conveyor amqp routes add makes one)")


@routes_app.command("rm")
def remove(
    ctx: typer.Context, route_id: Annotated[int, typer.Argument(help="The route's id.")]
) -> None:
    """Delete a route (its queue and messages stay in RabbitMQ)."""
    _run(ctx, lambda service: service.delete(route_id))
    console.print(f"deleted route {route_id}")


@amqp_app.command("status")
def status(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The tenant's routes with their counters, and how far egress has published."""
    settings, tenant = _settings(), options(ctx).tenant

    async def read(store: Store) -> tuple[list[AmqpRoute], int | None, bool]:
        service = _service(store, tenant, settings)
        routes = await service.list_routes()
        return routes, await amqp_for(store).read_cursor(EGRESS_CURSOR), service.bridge_running

    routes, cursor, running = run_with_store(ctx, read)
    if as_json:
        document = {
            "routes": [_record(r) for r in routes],
            "egress_cursor": cursor,
            "bridge_running": running,
        }
        console.print_json(to_json(document))
        return
    if not running:
        console.print(f"warning: {BRIDGE_OFF}", highlight=False)
    console.print(_table(routes) if routes else "no routes")
    published = "has not run yet" if cursor is None else f"has published up to event {cursor}"
    console.print(f"egress {published}", highlight=False)
