"""``conveyor webhooks ...``: the tenant's outgoing webhook Subscriptions.

Like ``conveyor schedules``, these commands work on the database directly
(``--database-url``, ``--tenant``) as the local operator. A secret is printed by
``add`` and ``rotate`` only; ``ls`` and ``deliveries`` never show one. Deliveries
are sent by ``conveyor serve`` (its notifier), not by these commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from conveyor.cli.context import checked_box, cli_principal, console, fail, options, run_with_store
from conveyor.cli.jobs import AsJson
from conveyor.cli.render import to_json
from conveyor.domain.errors import InvalidInput
from conveyor.domain.webhooks import Delivery, Subscription, SubscriptionSpec
from conveyor.net.policy import OutboundPolicy, split_entries
from conveyor.net.webhook_sender import HttpSender, Sender
from conveyor.services.webhooks import WebhookService
from conveyor.store import webhooks_for
from conveyor.store.protocol import Store

T = TypeVar("T")

webhooks_app = typer.Typer(
    help="Send the tenant's events to URLs (signed, retried for a day).", no_args_is_help=True
)

WebhookId = Annotated[int, typer.Argument(help="The webhook's id.")]
Events = Annotated[
    list[str] | None, typer.Option("--event", help="An event type or prefix (job.*); repeat.")
]
Queues = Annotated[list[str] | None, typer.Option("--queue", help="Only this queue; repeat.")]
Tasks = Annotated[list[str] | None, typer.Option("--task", help="Only this task; repeat.")]
Description = Annotated[str, typer.Option(help="What it is for.")]


def _run(
    ctx: typer.Context,
    use: Callable[[WebhookService], Awaitable[T]],
    sender: Sender | None = None,
) -> T:
    principal = cli_principal(options(ctx).tenant)

    async def call(store: Store) -> T:
        webhooks = webhooks_for(store, await checked_box(store))
        return await use(WebhookService(webhooks, principal, store.clock, None, sender))

    return run_with_store(ctx, call)


def _record(webhook: Subscription) -> dict[str, Any]:
    """A Subscription without its secrets."""
    return {
        "id": webhook.id,
        **asdict(webhook.spec),
        "failures": webhook.failures,
        "disabled_reason": webhook.disabled_reason,
    }


def _print_secret(webhook: Subscription, as_json: bool) -> None:
    if as_json:
        console.print_json(to_json(_record(webhook) | {"secret": webhook.secret}))
        return
    console.print(f"webhook {webhook.id} → {webhook.spec.url}", highlight=False)
    console.print(f"secret (shown once): {webhook.secret}", highlight=False, soft_wrap=True)


@webhooks_app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The http or https URL to POST events to.")],
    event: Events = None,
    queue: Queues = None,
    task: Tasks = None,
    description: Description = "",
    as_json: AsJson = False,
) -> None:
    """Subscribe a URL to the tenant's events from now on; prints the signing secret."""
    spec = SubscriptionSpec(
        url, tuple(event or ()), tuple(queue or ()), tuple(task or ()), True, description
    )
    _print_secret(_run(ctx, lambda service: service.create(spec)), as_json)


@webhooks_app.command("ls")
def list_webhooks(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The tenant's webhooks (without their secrets)."""
    found = _run(ctx, lambda service: service.list_webhooks())
    if as_json:
        console.print_json(to_json([_record(w) for w in found]))
        return
    table = Table("id", "url", "events", "enabled", "failures")
    for webhook in found:
        spec = webhook.spec
        events = ", ".join(spec.event_types) or "all"
        state = "yes" if spec.enabled else f"no ({webhook.disabled_reason or 'paused'})"
        table.add_row(str(webhook.id), spec.url, events, state, str(webhook.failures))
    console.print(table if found else "no webhooks yet (conveyor webhooks add makes one)")


@webhooks_app.command("rm")
def remove(ctx: typer.Context, webhook_id: WebhookId) -> None:
    """Delete a webhook and its delivery log."""
    _run(ctx, lambda service: service.delete(webhook_id))
    console.print(f"deleted webhook {webhook_id}")


@webhooks_app.command("enable")
def enable(ctx: typer.Context, webhook_id: WebhookId) -> None:
    """Turn a webhook (back) on; its failures are forgotten."""
    _run(ctx, lambda service: service.update(webhook_id, {"enabled": True}))
    console.print(f"enabled webhook {webhook_id}")


@webhooks_app.command("disable")
def disable(ctx: typer.Context, webhook_id: WebhookId) -> None:
    """Stop sending to a webhook (its pending deliveries wait)."""
    _run(ctx, lambda service: service.update(webhook_id, {"enabled": False}))
    console.print(f"disabled webhook {webhook_id}")


@webhooks_app.command("rotate")
def rotate(ctx: typer.Context, webhook_id: WebhookId, as_json: AsJson = False) -> None:
    """Sign with a new secret (printed once); the old one also signs for 24 hours."""
    _print_secret(_run(ctx, lambda service: service.rotate_secret(webhook_id)), as_json)


@webhooks_app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook_id: WebhookId,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many.")] = 20,
    as_json: AsJson = False,
) -> None:
    """A webhook's recent deliveries, newest first."""
    found: list[Delivery] = _run(ctx, lambda service: service.deliveries(webhook_id, limit))
    if as_json:
        console.print_json(
            to_json([{k: v for k, v in asdict(d).items() if k != "body"} for d in found])
        )
        return
    table = Table("id", "event", "type", "state", "attempts", "status", "error")
    for d in found:
        status = "" if d.status_code is None else str(d.status_code)
        table.add_row(
            str(d.id),
            str(d.event_id),
            d.event_type,
            d.state.value,
            str(d.attempts),
            status,
            d.error,
        )
    console.print(table if found else "no deliveries yet")


@webhooks_app.command("redeliver")
def redeliver(
    ctx: typer.Context,
    webhook_id: WebhookId,
    delivery_id: Annotated[int, typer.Argument(help="The delivery's id.")],
) -> None:
    """Send a delivery again (same webhook-id) when the server's notifier next runs."""
    _run(ctx, lambda service: service.redeliver(webhook_id, delivery_id))
    console.print(f"delivery {delivery_id} will be sent again")


@webhooks_app.command("test")
def send_test(
    ctx: typer.Context,
    webhook_id: WebhookId,
    allow: Annotated[
        str,
        typer.Option(
            envvar="CONVEYOR_HTTP_ALLOW",
            help="Non-public networks or hosts the URL may be on (as the server's http_allow).",
        ),
    ] = "",
    as_json: AsJson = False,
) -> None:
    """POST a signed webhook.test request to the URL now and show the answer (nothing
    is recorded). Exit code 1 if the receiver did not answer 2xx."""
    try:
        policy = OutboundPolicy.from_entries(split_entries(allow))
    except InvalidInput as exc:
        fail(f"--allow: {exc.problem}")
    result = _run(ctx, lambda service: service.send_test(webhook_id), HttpSender(policy))
    if as_json:
        console.print_json(to_json(asdict(result) | {"delivered": result.ok}))
    elif result.ok:
        console.print(f"delivered: {result.status_code} in {result.duration_ms} ms")
    else:
        reason = result.error or f"status {result.status_code}"
        console.print(f"not delivered: {reason} ({result.duration_ms} ms)", highlight=False)
    if not result.ok:
        raise typer.Exit(1)
