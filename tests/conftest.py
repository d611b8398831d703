"""Shared fixtures: real stores on SQLite (a temp file) and PostgreSQL (a database per run).

Outside CI a test whose service is unreachable is skipped with the reason; with
``CI=true`` it fails instead, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from graphlib import TopologicalSorter
from pathlib import Path

import psycopg
import pytest

from conveyor.settings import GENERATED_KEY_FILE
from conveyor.store.protocol import Store
from conveyor.store.sealing import key_from_file
from conveyor.store.sqlite.store import SQLiteStore

PG_ADMIN_URL = os.environ.get(
    "CONVEYOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(reason: str) -> None:
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: service-backed tests must run)")
    pytest.skip(reason)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``CONVEYOR_DATA_DIR`` for the whole run: servers and commands keep artifacts and
    the secret key there (not in the checkout) and share that key, as the nodes and
    commands of one installation do."""
    folder = tmp_path_factory.mktemp("conveyor-data")
    key_from_file(folder / GENERATED_KEY_FILE)  # as a first server start would
    patch = pytest.MonkeyPatch()
    patch.setenv("CONVEYOR_DATA_DIR", str(folder))
    yield folder
    patch.undo()


def _database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def _new_database(prefix: str) -> Iterator[str]:
    """Create a PostgreSQL database, yield its URL, drop it; skip (or fail in CI) if down."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")
    try:
        yield _database_url(PG_ADMIN_URL, name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database created for this test run, migrated, dropped at the end."""
    with _new_database("conveyor_test") as url:
        yield url


@pytest.fixture
def pg_empty_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (no migrations), dropped after the test."""
    with _new_database("conveyor_empty") as url:
        yield url


@pytest.fixture(scope="session")
def pg_migrated(pg_url: str) -> str:
    migrate_database(pg_url)
    return pg_url


def migrate_database(url: str) -> None:
    """Apply the schema to the database at ``url`` (from sync fixtures)."""
    import asyncio

    from conveyor.store import store_from_url

    async def migrate() -> None:
        store = store_from_url(url, sqlite_synchronous="NORMAL")
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(migrate())


# Rows a reset keeps: the schema's version, the tenants table (all but the default
# tenant go) and the mail cursor (set back to 0).
_KEPT_TABLES = frozenset({"schema_migrations", "tenants", "mail_cursor"})


def _reset_statements(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """The reset of this database's schema: a DELETE of every table, children before
    their parents (read from the foreign keys, so a new table needs no edit here), and
    every id sequence back to 1, as TRUNCATE RESTART IDENTITY did. DELETE, not
    TRUNCATE: a test leaves a few rows, and TRUNCATE makes new files for every table
    and index (about 60 ms per test here, against 10)."""
    tables = [
        row[0]
        for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]
    children: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in conn.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f'"
    ):
        if child != parent:
            children[parent].add(child)
    emptied = [t for t in TopologicalSorter(children).static_order() if t not in _KEPT_TABLES]
    return ";\n".join(
        [
            *(f"DELETE FROM {table}" for table in emptied),
            "DELETE FROM tenants WHERE id <> 'default'",
            "SELECT setval(seq.oid, 1, false) FROM pg_class seq"
            " JOIN pg_depend dep ON dep.objid = seq.oid AND dep.deptype IN ('a', 'i')"
            " WHERE seq.relkind = 'S' AND dep.refobjid::regclass::text <> 'tenants'",
            "UPDATE mail_cursor SET last_event_id = 0",
            "INSERT INTO tenants (id, name) VALUES ('default', 'Default') ON CONFLICT DO NOTHING",
            "UPDATE tenants SET status = 'active', allow_signup = false",
        ]
    )


_RESETS: dict[str, str] = {}


def _truncate(url: str) -> None:
    """Empty every table but the default tenant's row, in one transaction."""
    with psycopg.connect(url) as conn:
        if url not in _RESETS:
            _RESETS[url] = _reset_statements(conn)
        conn.execute(_RESETS[url])


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of the parametrised kind."""
    if store_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'conveyor.db'}"
    url = str(request.getfixturevalue("pg_migrated"))
    _truncate(url)
    return url


@pytest.fixture
async def store(database_url: str, store_kind: str) -> AsyncIterator[Store]:
    """An open store on a migrated, empty database; runs every test on both dialects."""
    s: Store
    if store_kind == "sqlite":
        s = SQLiteStore(database_url.removeprefix("sqlite:///"), synchronous="NORMAL")
    else:
        from conveyor.store.postgres.store import PostgresStore

        s = PostgresStore(database_url)
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """``database_url`` with the schema applied, for tests that are not async."""
    migrate_database(database_url)
    return database_url
