"""A real uvicorn server for a started :class:`~conveyor.server.Server`, on a free
port of 127.0.0.1, for tests that need real sockets (WebSocket, SSE, a browser)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from conveyor.server import Server
from conveyor.services.live import EndReason

STOP_SECONDS = 5
"""How long open responses may take to finish when the test's server stops."""


@contextlib.asynccontextmanager
async def served(server: Server) -> AsyncIterator[int]:
    """Serve ``server``'s web app until the block ends; yields the port."""
    from conveyor.web.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        create_app(server),
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=STOP_SECONDS,
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    try:
        while not uv.started:
            if task.done():  # it failed to start: raise why
                await task
            await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.live.end_all(EndReason.SHUTDOWN)  # ends the streams: uvicorn need not wait
        uv.should_exit = True
        try:
            async with asyncio.timeout(STOP_SECONDS * 3):
                await task
        finally:
            sock.close()
