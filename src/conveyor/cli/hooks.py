"""``conveyor hooks ...``: the tenant's incoming hooks and the requests they received.

Like ``conveyor webhooks``, these commands work on the database directly
(``--database-url``, ``--tenant``) as the local operator. A hook's URL (its token) and
its secret are printed by ``add`` and ``rotate-token`` only; ``ls``, ``show`` and
``receipts`` never show them. Requests are received by ``conveyor serve``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from conveyor.cli.context import (
    checked_box,
    cli_principal,
    console,
    errors,
    fail,
    options,
    run_with_store,
)
from conveyor.cli.jobs import AsJson
from conveyor.cli.render import to_json
from conveyor.domain.hooks import (
    DEFAULT_DELIVERY_HEADER,
    DEFAULT_SIGNATURE_HEADER,
    HookSpec,
    IncomingHook,
    Receipt,
    ReceiptFilter,
    VerifyScheme,
)
from conveyor.services.hooks import HookService, Revealed
from conveyor.services.jobs import JobService
from conveyor.services.tasks import TaskCatalog
from conveyor.store import hooks_for, tasks_for
from conveyor.store.protocol import Store

T = TypeVar("T")

hooks_app = typer.Typer(
    help="Receive requests at secret URLs: store them, verify them, enqueue tasks.",
    no_args_is_help=True,
)

HookId = Annotated[int, typer.Argument(help="The hook's id.")]
ServerUrl = Annotated[
    str | None,
    typer.Option(
        envvar="CONVEYOR_PUBLIC_URL",
        help="The server's public address, to print the URL (default: "
        "CONVEYOR_PUBLIC_URL, else http://127.0.0.1:8000).",
    ),
]
DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
DEFAULT_URL_NOTE = (
    "note: that URL starts with the default address {default}; senders need the "
    "server's public one (--server-url or CONVEYOR_PUBLIC_URL)"
)


def _run(ctx: typer.Context, use: Callable[[HookService], Awaitable[T]]) -> T:
    principal = cli_principal(options(ctx).tenant)

    async def call(store: Store) -> T:
        jobs = JobService(store, principal.tenant_id, catalog=TaskCatalog(tasks_for(store)))
        hooks = hooks_for(store, await checked_box(store))
        return await use(HookService(hooks, principal, store.clock, jobs))

    return run_with_store(ctx, call)


def _record(hook: IncomingHook) -> dict[str, Any]:
    """A hook without its secret."""
    return {"id": hook.id, **asdict(hook.spec), "created_at": hook.created_at}


def _print_revealed(revealed: Revealed, server_url: str | None, as_json: bool) -> None:
    hook = revealed.hook
    url = None
    if revealed.token is not None:
        url = f"{(server_url or DEFAULT_SERVER_URL).rstrip('/')}/hooks/{revealed.token}"
    if url is not None and not server_url:
        errors.print(DEFAULT_URL_NOTE.format(default=DEFAULT_SERVER_URL), highlight=False)
    if as_json:
        shown = _record(hook) | {"token": revealed.token, "url": url, "secret": revealed.secret}
        console.print_json(to_json(shown))
        return
    console.print(f"hook {hook.id} ({hook.spec.name})", highlight=False)
    if url is not None:
        console.print(f"url (shown once): {url}", highlight=False, soft_wrap=True)
    if revealed.secret:
        console.print(f"secret (shown once): {revealed.secret}", highlight=False, soft_wrap=True)


@hooks_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name, unique in the tenant.")],
    verify: Annotated[
        str, typer.Option(help="none, standard-webhooks or hmac-sha256.")
    ] = VerifyScheme.NONE.value,
    secret: Annotated[
        str | None,
        typer.Option(
            help="The sender's secret (default: a new one is made). It lands in the shell's "
            "history: prefer --secret-file."
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="A file holding the sender's secret (a trailing newline is dropped).",
        ),
    ] = None,
    signature_header: Annotated[
        str, typer.Option(help="The hmac-sha256 signature's header.")
    ] = DEFAULT_SIGNATURE_HEADER,
    delivery_header: Annotated[
        str, typer.Option(help="The header naming a delivery (stored once).")
    ] = DEFAULT_DELIVERY_HEADER,
    task: Annotated[str | None, typer.Option(help="Enqueue this task with each body.")] = None,
    queue: Annotated[str | None, typer.Option(help="The job's queue.")] = None,
    priority: Annotated[int | None, typer.Option(min=0, max=9, help="The job's priority.")] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    server_url: ServerUrl = None,
    as_json: AsJson = False,
) -> None:
    """Make a hook; prints its URL and secret (shown once)."""
    try:
        scheme = VerifyScheme(verify)
    except ValueError:
        fail(f"--verify must be one of {', '.join(s.value for s in VerifyScheme)}")
    if secret_file is not None:
        if secret is not None:
            fail("give --secret or --secret-file, not both")
        secret = _read_secret(secret_file)
    spec = HookSpec(
        name=name,
        description=description,
        verify=scheme,
        signature_header=signature_header,
        delivery_header=delivery_header,
        task=task,
        queue=queue,
        priority=priority,
    )
    _print_revealed(_run(ctx, lambda service: service.create(spec, secret)), server_url, as_json)


def _read_secret(path: Path) -> str:
    """The secret in ``path``, without its trailing newline."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--secret-file: cannot read {path}: {exc}")


@hooks_app.command("ls")
def list_hooks(ctx: typer.Context, as_json: AsJson = False) -> None:
    """The tenant's hooks (without their URLs and secrets)."""
    found = _run(ctx, lambda service: service.list_hooks())
    if as_json:
        console.print_json(to_json([_record(h) for h in found]))
        return
    table = Table("id", "name", "verify", "task", "enabled")
    for hook in found:
        spec = hook.spec
        enabled = "yes" if spec.enabled else "no"
        table.add_row(str(hook.id), spec.name, spec.verify.value, spec.task or "", enabled)
    console.print(table if found else "no hooks yet (conveyor hooks add makes one)")


@hooks_app.command("show")
def show(ctx: typer.Context, hook_id: HookId, as_json: AsJson = False) -> None:
    """One hook (without its URL and secret)."""
    hook = _run(ctx, lambda service: service.get(hook_id))
    if as_json:
        console.print_json(to_json(_record(hook)))
        return
    for key, value in _record(hook).items():
        console.print(f"{key}: {'' if value is None else value}", highlight=False)


@hooks_app.command("rm")
def remove(ctx: typer.Context, hook_id: HookId) -> None:
    """Delete a hook and every request it received."""
    _run(ctx, lambda service: service.delete(hook_id))
    console.print(f"deleted hook {hook_id}")


@hooks_app.command("rotate-token")
def rotate_token(
    ctx: typer.Context,
    hook_id: HookId,
    server_url: ServerUrl = None,
    as_json: AsJson = False,
) -> None:
    """Give the hook a new URL (printed once); the old one stops working at once."""
    _print_revealed(_run(ctx, lambda service: service.rotate_token(hook_id)), server_url, as_json)


@hooks_app.command("receipts")
def receipts(
    ctx: typer.Context,
    hook_id: HookId,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many.")] = 20,
    delivery_id: Annotated[str | None, typer.Option(help="Only this delivery id.")] = None,
    as_json: AsJson = False,
) -> None:
    """The requests a hook received, newest first (without their bodies)."""
    filters = ReceiptFilter(limit=limit, delivery_id=delivery_id)
    found: list[Receipt] = _run(ctx, lambda service: service.receipts(hook_id, filters))
    if as_json:
        console.print_json(to_json([asdict(r) for r in found]))
        return
    table = Table("id", "received", "delivery", "size", "ip", "job")
    for r in found:
        job = "" if r.job_id is None else str(r.job_id)
        table.add_row(r.id, r.received_at.isoformat(), r.delivery_id or "", str(r.size), r.ip, job)
    console.print(table if found else "no requests received yet")
