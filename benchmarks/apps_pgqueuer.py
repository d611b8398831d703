"""The pgqueuer worker the benchmark runs: ``python -m benchmarks.apps_pgqueuer [BATCH]``.

This is what ``pgq run benchmarks.apps_pgqueuer:create`` does; that CLI fails to
start with the installed typer (``AttributeError: 'str' object has no attribute
'name'`` in its log-level option), so the worker calls :func:`pgqueuer.run` itself.
The database comes from ``BENCH_PG_URL``. Like pgqueuer's CLI, the driver is
asyncpg when it is installed, else psycopg.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from pgqueuer import AsyncpgDriver, Job, PgQueuer, PsycopgDriver, run

from benchmarks.stamps import record_start

URL_ENV = "BENCH_PG_URL"
DEFAULT_BATCH = 10  # `pgq run --batch-size` default


async def connect_driver(url: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """A pgqueuer driver on a new connection, and how to close it."""
    try:
        import asyncpg
    except ImportError:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        return PsycopgDriver(conn), conn.close
    connection = await asyncpg.connect(url)
    return AsyncpgDriver(connection), connection.close


def _register(pgq: PgQueuer) -> PgQueuer:
    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        """Do nothing."""

    @pgq.entrypoint("stamp")
    async def stamp(job: Job) -> None:
        """Record when this job started; the payload is its sequence number."""
        record_start(int(job.payload or b"0"))

    return pgq


@contextlib.asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    """A PgQueuer on one connection to ``BENCH_PG_URL``."""
    driver, close = await connect_driver(os.environ[URL_ENV])
    try:
        yield _register(PgQueuer(driver))
    finally:
        await close()


def main() -> None:
    """Run one worker until SIGTERM, with pgqueuer's default batch size unless given."""
    batch_size = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_BATCH
    asyncio.run(run(create, batch_size=batch_size, dequeue_timeout=timedelta(seconds=30)))


if __name__ == "__main__":
    main()
