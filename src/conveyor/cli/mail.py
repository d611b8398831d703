"""``conveyor mail ...``: the tenant's mail rules and outbox, and a test mail.

Like ``conveyor webhooks``, the rule and outbox commands work on the database
directly (``--database-url``, ``--tenant``) as the local operator. Mails are sent by
``conveyor serve`` (its mailer, when ``smtp_host`` is set); ``conveyor mail test``
sends one at once with the server's SMTP settings (``CONVEYOR_SMTP_*`` or the
``--config`` file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.cli.context import cli_principal, console, errors, fail, options, run_with_store
from conveyor.cli.jobs import AsJson
from conveyor.cli.render import to_json
from conveyor.domain.errors import InvalidInput
from conveyor.domain.mail import MailRule, OutboxMail
from conveyor.services.mail import MailService
from conveyor.settings import load_settings
from conveyor.store import mail_for
from conveyor.store.protocol import Store

T = TypeVar("T")

mail_app = typer.Typer(
    help="Email on job start, success and failure; the daily summary.", no_args_is_help=True
)
rules_app = typer.Typer(help="Which jobs mail whom, and when.", no_args_is_help=True)
mail_app.add_typer(rules_app, name="rules")

RuleId = Annotated[int, typer.Argument(help="The rule's id.")]


def _run(ctx: typer.Context, use: Callable[[MailService], Awaitable[T]]) -> T:
    principal = cli_principal(options(ctx).tenant)

    async def call(store: Store) -> T:
        return await use(MailService(mail_for(store), store, principal, store.clock))

    return run_with_store(ctx, call)


def _rule(rule: MailRule) -> dict[str, Any]:
    spec = rule.spec
    return {
        "id": rule.id,
        "scope": f"{spec.scope_kind.value}:{spec.scope_value}",
        "on": [e.value for e in spec.on],
        "to": list(spec.to),
        "created_by": rule.created_by,
        "created_at": rule.created_at,
    }


@rules_app.command("add")
def add_rule(
    ctx: typer.Context,
    scope: Annotated[str, typer.Argument(help="task:NAME, schedule:ID or job:ID.")],
    on: Annotated[list[str], typer.Option("--on", help="started, succeeded or failed; repeat.")],
    to: Annotated[
        list[str], typer.Option("--to", help="An address, or 'owner' (the job's creator); repeat.")
    ],
    as_json: AsJson = False,
) -> None:
    """Mail the addresses when the scope's jobs start, succeed or fail."""
    rule = _run(ctx, lambda service: service.add_rule(scope, on, to))
    if as_json:
        console.print_json(to_json(_rule(rule)))
    else:
        console.print(f"mail rule {rule.id}: {scope} on {', '.join(on)}", highlight=False)


@rules_app.command("ls")
def list_rules(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The tenant's mail rules."""
    found = _run(ctx, lambda service: service.list_rules())
    if as_json:
        console.print_json(to_json([_rule(r) for r in found]))
        return
    table = Table("id", "scope", "on", "to")
    for rule in found:
        record = _rule(rule)
        cells = (record["scope"], ", ".join(record["on"]), ", ".join(record["to"]))
        table.add_row(str(rule.id), *map(escape, cells))
    console.print(table if found else "no mail rules yet (conveyor mail rules add makes one)")


@rules_app.command("rm")
def remove_rule(ctx: typer.Context, rule_id: RuleId) -> None:
    """Delete a mail rule (mails already queued are still sent)."""
    _run(ctx, lambda service: service.delete_rule(rule_id))
    console.print(f"deleted mail rule {rule_id}")


@mail_app.command("outbox")
def outbox(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many.")] = 20,
    as_json: AsJson = False,
) -> None:
    """The tenant's recent mails with their state (pending, sent, failed), newest first."""
    found: list[OutboxMail] = _run(ctx, lambda service: service.outbox(limit))
    if as_json:
        records = [
            {
                "id": m.id,
                "kind": m.kind,
                "job_id": m.job_id,
                "to": m.recipient,
                "subject": m.content.subject,
                "state": m.state.value,
                "attempts": m.attempts,
                "last_error": m.last_error,
                "created_at": m.created_at,
                "sent_at": m.sent_at,
            }
            for m in found
        ]
        console.print_json(to_json(records))
        return
    table = Table("id", "kind", "to", "subject", "state", "attempts", "error")
    for m in found:
        # Subjects come from templates and errors from SMTP servers: text, not markup.
        cells = (m.kind, m.recipient, m.content.subject, m.state.value)
        table.add_row(str(m.id), *map(escape, cells), str(m.attempts), escape(m.last_error))
    console.print(table if found else "no mail yet")


@mail_app.command("test")
def send_test(
    to: Annotated[str, typer.Option("--to", help="Who gets the test mail.")],
    config: Annotated[
        Path | None, typer.Option(help="A TOML settings file (as for conveyor serve).")
    ] = None,
) -> None:
    """Send a test mail now with the SMTP settings of the server (``CONVEYOR_SMTP_HOST``
    and the rest). Exit code 2 if mail is not set up, 1 if the server refused it."""
    # Here, not at the top: the other commands start without the template engine.
    from conveyor.mail.rendering import Renderer
    from conveyor.mail.smtp import DeliveryError, SmtpTransport, smtp_config

    try:
        settings = load_settings(config)
        transport = SmtpTransport(smtp_config(settings))
        content = Renderer(settings.url, settings.mail_templates_dir).test_mail()
    except InvalidInput as exc:
        fail(exc.message)
    try:
        asyncio.run(transport.send(to, content, "conveyor.test"))
    except DeliveryError as exc:
        errors.print(
            f"[bold red]not sent:[/] {escape(exc.message)}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from None
    console.print(f"sent a test mail to {escape(to)} via {settings.smtp_host}:{settings.smtp_port}")
