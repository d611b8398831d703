"""What ``conveyor serve`` runs: migrations and key checks first, then uvicorn with
the server, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import gc
import socket

import uvicorn

from conveyor.app import Conveyor
from conveyor.cli.context import console
from conveyor.domain.jobs import utcnow
from conveyor.server import Server
from conveyor.services.live import EndReason
from conveyor.settings import Settings
from conveyor.store import accounts_for, store_from_url

DEMO_JOBS = 8
HTTP_DRAIN_SECONDS = 30
"""On stop, how long open responses may take to finish before they are cut."""


async def run_server(settings: Settings, worker_app: Conveyor | None, migrate: bool) -> None:
    """Run uvicorn; the app's lifespan starts and (on SIGTERM/Ctrl-C) drains the server."""
    from conveyor.web.app import create_app

    await _prepare(settings, migrate)
    if worker_app is not None:
        worker_app.database_url = settings.database_url
    server = Server(settings, worker_app)

    async def started(server: Server) -> None:
        if settings.demo and worker_app is not None:
            from conveyor.demo import demo_requests

            await worker_app.aio.enqueue_many(demo_requests(DEMO_JOBS))
        # Everything made while starting (modules, the app, its schemas) lives as long
        # as the process: leave it out of the garbage collector's full passes, which
        # otherwise stall every request for tens of milliseconds now and then.
        gc.freeze()
        _greet(server)

    config = uvicorn.Config(
        create_app(server, on_start=started),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=HTTP_DRAIN_SECONDS,
    )
    await _Uvicorn(config, server).serve()


class _Uvicorn(uvicorn.Server):
    """uvicorn that ends the live event streams before it waits for open responses to
    finish: a Server-Sent Events stream never ends by itself, so a stop would hang."""

    def __init__(self, config: uvicorn.Config, conveyor: Server) -> None:
        super().__init__(config)
        self.conveyor = conveyor

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End every live stream, then shut down as uvicorn does."""
        if self.conveyor.started:
            self.conveyor.live.end_all(EndReason.SHUTDOWN)
        await super().shutdown(sockets)


async def _prepare(settings: Settings, migrate: bool) -> None:
    """Migrate (or refuse a missing or old schema), check the secret key and that the
    stored token signing keys open, each with one clear line on failure (not a
    traceback from inside uvicorn)."""
    store = store_from_url(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous, create=migrate
    )
    await store.open()
    try:
        if migrate:
            applied = await store.migrate()
            if applied:
                console.print(f"database ready (migrations {applied} applied)")
        else:
            await store.check_schema()
        accounts = accounts_for(store, settings.secret_box())
        await accounts.check_key(utcnow())
        if settings.secret_key is None:  # else tokens are signed with that key
            await accounts.signing_keys()  # one line if none opens
    finally:
        await store.close()


def _greet(server: Server) -> None:
    url = server.settings.url
    console.print(
        f"Conveyor is serving at [bold]{url}[/]: open it to sign in  (API docs: {url}/api/docs)",
        soft_wrap=True,
    )
    login = server.first_login
    if login is not None:
        console.print(
            f"first start: sign in as [bold]{login.email}[/] with password "
            f"[bold]{login.password}[/] (shown once; change it with POST /api/v1/auth/password)",
            highlight=False,
            soft_wrap=True,
        )
