"""The ``conveyor`` command."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
import sys
from typing import Annotated, Any

import typer

from conveyor.app import Conveyor
from conveyor.cli.amqp import amqp_app
from conveyor.cli.context import Options, console, fail, options, run_with_jobs, run_with_store
from conveyor.cli.demo import demo
from conveyor.cli.hooks import hooks_app
from conveyor.cli.jobs import enqueue, jobs_app
from conveyor.cli.mail import mail_app
from conveyor.cli.queues import queues_app
from conveyor.cli.render import event_line
from conveyor.cli.schedules import schedules_app
from conveyor.cli.serve import serve
from conveyor.cli.webhooks import webhooks_app
from conveyor.domain.errors import ConveyorError
from conveyor.services.jobs import JobService
from conveyor.store import DEFAULT_DATABASE_URL
from conveyor.store.protocol import Store

app = typer.Typer(
    name="conveyor",
    help="Conveyor: durable jobs on SQLite or PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
events_app = typer.Typer(help="The event log.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(queues_app, name="queues")
app.add_typer(schedules_app, name="schedules")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(mail_app, name="mail")
app.add_typer(hooks_app, name="hooks")
app.add_typer(amqp_app, name="amqp")
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.command("enqueue")(enqueue)
app.command("demo")(demo)
app.command("serve")(serve)


@app.callback()
def main_options(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="CONVEYOR_DATABASE_URL",
            help=f"sqlite:///path.db or postgresql://... [default: {DEFAULT_DATABASE_URL}]",
        ),
    ] = None,
    tenant: Annotated[str, typer.Option(envvar="CONVEYOR_TENANT", help="Tenant id.")] = "default",
    sqlite_synchronous: Annotated[
        str, typer.Option(envvar="CONVEYOR_SQLITE_SYNCHRONOUS", help="FULL (durable) or NORMAL.")
    ] = "FULL",
) -> None:
    """Global options."""
    ctx.obj = Options(database_url or DEFAULT_DATABASE_URL, tenant, sqlite_synchronous)
    ctx.obj.database_url_given = database_url is not None


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply pending migrations."""

    async def upgrade(store: Store) -> list[int]:
        return await store.migrate()

    applied = run_with_store(ctx, upgrade, check_schema=False)
    console.print(f"applied migrations {applied}" if applied else "the schema is up to date")


@db_app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Show the schema version."""

    async def status(store: Store) -> int:
        return await store.schema_version()

    console.print(f"schema version {run_with_store(ctx, status, check_schema=False)}")


@events_app.command("tail")
def events_tail(
    ctx: typer.Context,
    after: Annotated[int, typer.Option(help="Start after this event id.")] = 0,
    follow: Annotated[bool, typer.Option(help="Keep printing new events.")] = True,
) -> None:
    """Print events as they happen."""

    async def tail(jobs: JobService) -> None:
        cursor = after
        while True:
            page = await jobs.events(cursor, 500)
            for event in page:
                console.print(event_line(event), highlight=False, soft_wrap=True)
                cursor = event.id
            if not page:
                if not follow:
                    return
                await asyncio.sleep(0.25)

    run_with_jobs(ctx, tail)


def load_app(spec: str) -> Conveyor:
    """Import ``module:attribute`` and check it is a Conveyor app."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        fail(f"app must be MODULE:APP, like myproject.tasks:app (got {spec!r})")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        fail(f"cannot import {module_name!r}: {exc}")
    found = getattr(module, attribute, None)
    if not isinstance(found, Conveyor):
        fail(f"{spec} is not a Conveyor app (found {type(found).__name__})")
    return found


async def _serve_worker(conveyor_app: Conveyor, settings: Any, scheduler: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stop)
    try:
        await conveyor_app.aio.run_worker(settings, stop, scheduler=scheduler)
    finally:
        await conveyor_app.aio.close()


def _on_signal(stop: asyncio.Event) -> None:
    if stop.is_set():
        logging.getLogger("conveyor.worker").warning("second signal: stopping now")
        os._exit(1)
    logging.getLogger("conveyor.worker").info("stopping: finishing running jobs")
    stop.set()


@app.command("worker")
def worker(
    ctx: typer.Context,
    app_spec: Annotated[str, typer.Argument(metavar="MODULE:APP", help="Your Conveyor app.")],
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once.")] = 10,
    queues: Annotated[str | None, typer.Option(help="Comma-separated queues.")] = None,
    reserved: Annotated[
        int | None, typer.Option(min=0, help="Extra slots for priority-0/immediate jobs.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Jobs per claim.")] = 100,
    lease: Annotated[float, typer.Option(min=1, help="Lease seconds.")] = 10.0,
    heartbeat: Annotated[float, typer.Option(min=0.1, help="Heartbeat seconds.")] = 2.0,
    grace: Annotated[float, typer.Option(min=0, help="Seconds to finish on shutdown.")] = 30.0,
    scheduler: Annotated[
        bool,
        typer.Option(help="Also fire due schedules when this process leads (one process does)."),
    ] = True,
) -> None:
    """Run the jobs of your app's tasks until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    conveyor_app = load_app(app_spec)
    opts = options(ctx)
    if opts.database_url_given:
        conveyor_app.database_url = opts.database_url
    conveyor_app.tenant = opts.tenant
    if heartbeat >= lease:
        fail("--heartbeat must be shorter than --lease")
    settings = conveyor_app.worker_settings(
        concurrency=concurrency,
        queues=tuple(q.strip() for q in queues.split(",") if q.strip()) if queues else (),
        reserved=reserved,
        batch_size=batch,
        lease_seconds=lease,
        heartbeat_seconds=heartbeat,
        shutdown_grace=grace,
    )
    gc.freeze()  # the app and modules live as long as the process (see serve)
    try:
        asyncio.run(_serve_worker(conveyor_app, settings, scheduler))
    except ConveyorError as exc:
        fail(exc.message)


def main() -> None:
    """Entry point of the ``conveyor`` script."""
    app()
