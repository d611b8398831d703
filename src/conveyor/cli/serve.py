"""``conveyor serve``: the API, the background loops and, optionally, a worker.

What it runs (uvicorn and the server) lives in :mod:`conveyor.cli.serving`, imported
when the command starts: every other command starts without loading the web stack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from conveyor.cli.context import console, fail, options
from conveyor.domain.errors import ConveyorError
from conveyor.settings import Settings, load_settings

if TYPE_CHECKING:
    from conveyor.app import Conveyor


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: 8000].")] = None,
    config: Annotated[Path | None, typer.Option(help="A TOML settings file.")] = None,
    worker: Annotated[
        str | None, typer.Option(metavar="MODULE:APP", help="Run this app's tasks in the server.")
    ] = None,
    demo: Annotated[bool, typer.Option(help="Run the demo tasks and enqueue a few jobs.")] = False,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = False,
) -> None:
    """Serve the REST API (docs at /api/docs) and run the background loops."""
    from conveyor.cli.serving import run_server

    opts = options(ctx)
    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            worker=worker,
            demo=demo or None,
            database_url=opts.database_url if opts.database_url_given else None,
        )
    except ConveyorError as exc:
        fail(exc.message)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(run_server(settings, _worker_app(settings), migrate))
    except ConveyorError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        console.print("stopped")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (it comes with uvicorn[standard]): about a fifth
    less CPU per request in the API benchmark."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop wheels
        return None
    return uvloop.new_event_loop


def _worker_app(settings: Settings) -> Conveyor | None:
    if settings.demo:
        from conveyor.demo import app

        return app
    if settings.worker:
        from conveyor.cli.main import load_app

        return load_app(settings.worker)
    return None
