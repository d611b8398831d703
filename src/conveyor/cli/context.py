"""What every CLI command shares: the database, the tenant, and error handling."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import typer
from rich.console import Console

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import ConveyorError
from conveyor.domain.jobs import DEFAULT_TENANT
from conveyor.services.jobs import JobService
from conveyor.services.schedules import ScheduleService
from conveyor.services.tasks import TaskCatalog
from conveyor.settings import load_settings
from conveyor.store import (
    DEFAULT_DATABASE_URL,
    accounts_for,
    schedules_for,
    store_from_url,
    tasks_for,
)
from conveyor.store.protocol import Store
from conveyor.store.sealing import SecretBox

T = TypeVar("T")

console = Console()
errors = Console(stderr=True)


@dataclass(slots=True)
class Options:
    """Options given before the command: where the database is, which tenant."""

    database_url: str = DEFAULT_DATABASE_URL
    tenant: str = DEFAULT_TENANT
    sqlite_synchronous: str = "FULL"
    database_url_given: bool = False


def options(ctx: typer.Context) -> Options:
    """The global options of this invocation."""
    found = ctx.find_object(Options)
    return (
        found
        if found is not None
        else Options(database_url=os.environ.get("CONVEYOR_DATABASE_URL", DEFAULT_DATABASE_URL))
    )


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit with code 2."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


async def _with_store(opts: Options, use: Callable[[Store], Awaitable[T]], check_schema: bool) -> T:
    store = store_from_url(
        opts.database_url, sqlite_synchronous=opts.sqlite_synchronous, create=not check_schema
    )
    await store.open()
    try:
        if check_schema:
            await store.check_schema()
        return await use(store)
    finally:
        await store.close()


def run_with_store(
    ctx: typer.Context, use: Callable[[Store], Awaitable[T]], *, check_schema: bool = True
) -> T:
    """Open the store, run ``use`` with it, close it; errors become one line and exit 2."""
    try:
        return asyncio.run(_with_store(options(ctx), use, check_schema))
    except ConveyorError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        errors.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {exc} "
            "(set CONVEYOR_DEBUG=1 to see the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


async def checked_box(store: Store) -> SecretBox:
    """What seals the secrets these commands keep: the server's key (``CONVEYOR_SECRET_KEY``
    or its ``_FILE``, ``CONVEYOR_CONFIG``, or ``secret.key`` in ``CONVEYOR_DATA_DIR``),
    checked against the database before anything is written. Never makes a key."""
    box = load_settings().secret_box(create=False)
    await accounts_for(store, box).check_key(store.clock())
    return box


def run_with_jobs(ctx: typer.Context, use: Callable[[JobService], Awaitable[T]]) -> T:
    """Like :func:`run_with_store`, with the tenant's job service."""
    tenant = options(ctx).tenant

    async def call(store: Store) -> T:
        return await use(JobService(store, tenant, catalog=TaskCatalog(tasks_for(store))))

    return run_with_store(ctx, call)


def cli_principal(tenant: str) -> Principal:
    """The local operator: who can open the database holds every scope of the tenant
    (named ``user:cli:<login name>`` where an owner is recorded)."""
    return Principal(tenant_id=tenant, scopes=frozenset(Scope), user_id=f"cli:{_login_name()}")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login variable and no passwd entry (a bare container)
        return "unknown"


def run_with_schedules(ctx: typer.Context, use: Callable[[ScheduleService], Awaitable[T]]) -> T:
    """Like :func:`run_with_jobs`, with the tenant's schedules, as :func:`cli_principal`."""
    principal = cli_principal(options(ctx).tenant)

    async def call(store: Store) -> T:
        return await use(ScheduleService(schedules_for(store), principal, store.clock))

    return run_with_store(ctx, call)


def is_terminal() -> bool:
    """Whether output goes to a person (tables) or a program."""
    return sys.stdout.isatty()
