"""The schema: migrations build what the run-time queries expect, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.domain.errors import SchemaOutdated
from conveyor.store import store_from_url, tables
from conveyor.store.protocol import Store
from conveyor.store.queries import migration_files

pytestmark = pytest.mark.anyio


async def _columns(store: Store, table: str) -> dict[str, bool]:
    """Column name -> nullable, read from the live database."""
    if store.dialect == "sqlite":
        rows = await store._run(  # type: ignore[attr-defined]
            lambda: store.conn.execute(f"PRAGMA table_info({table})").fetchall()  # type: ignore[attr-defined]
        )
        return {r["name"]: not r["notnull"] and not r["pk"] for r in rows}
    async with store.pool.connection() as conn:  # type: ignore[attr-defined]
        cursor = await conn.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        return {r["column_name"]: r["is_nullable"] == "YES" for r in await cursor.fetchall()}


@pytest.mark.parametrize("table", sorted(tables.metadata.tables))
async def test_migrated_tables_match_the_query_model(store: Store, table: str) -> None:
    live = await _columns(store, table)
    model = {
        c.name: bool(c.nullable) and not c.primary_key for c in tables.metadata.tables[table].c
    }
    # The query model may describe a subset of a table's columns, never a different one.
    assert {name: live.get(name) for name in model} == model


async def test_migrations_are_numbered_without_gaps(store: Store) -> None:
    versions = [version for version, _, _ in migration_files(store.dialect)]
    assert versions == list(range(1, len(versions) + 1))
    assert await store.schema_version() == versions[-1]


async def test_migrating_twice_applies_nothing_the_second_time(store: Store) -> None:
    assert await store.migrate() == []
    await store.check_schema()


async def test_an_empty_database_is_refused_with_the_upgrade_command(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = request.getfixturevalue("pg_empty_url")
    empty = store_from_url(url)
    await empty.open()
    try:
        with pytest.raises(SchemaOutdated, match="conveyor db upgrade"):
            await empty.check_schema()
    finally:
        await empty.close()
