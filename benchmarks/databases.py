"""A fresh database per measurement: a new PostgreSQL database, or a new SQLite file."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg

from benchmarks.config import PG_ADMIN_URL


def _database_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
        await conn.execute(sql)  # names are ours: bench_<hex>


@contextlib.asynccontextmanager
async def fresh_postgres(label: str) -> AsyncIterator[str]:
    """Create a database, yield its URL, drop it afterwards."""
    name = f"bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def fresh_sqlite(label: str) -> AsyncIterator[str]:
    """A temporary directory with a database path in it; removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    try:
        yield f"sqlite:///{directory / 'conveyor.db'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def fresh_database(label: str, postgres: bool) -> contextlib.AbstractAsyncContextManager[str]:
    """A fresh database for one measurement of system ``label``."""
    return fresh_postgres(label) if postgres else fresh_sqlite(label)


async def server_version() -> str:
    """The PostgreSQL server's version string."""
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = await (await conn.execute("SHOW server_version")).fetchone()
    return str(row[0]) if row else "unknown"
