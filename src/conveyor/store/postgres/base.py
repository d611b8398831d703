"""What every part of the PostgreSQL store shares: its settings and state, the
connection pools, the plumbing that runs ``queries.sql``, opening, closing and
migrating, the portable statements, and the one translation of psycopg's errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, LiteralString, TypeAlias

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool

from conveyor.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    StoreUnavailable,
)
from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job, utcnow
from conveyor.store import rows
from conveyor.store.protocol import Clock, SqlSteps
from conveyor.store.queries import load_queries, migration_files, require_schema

Conn: TypeAlias = AsyncConnection[DictRow]

_MIGRATION_LOCK = 0x636F6E76  # "conv": serialises concurrent migrate() calls


def from_db(value: datetime) -> datetime:
    """``timestamptz`` values come back in the session's zone (UTC); Conveyor uses UTC."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


@contextlib.contextmanager
def driver_errors() -> Iterator[None]:
    """Translate psycopg's errors into Conveyor's: the one place that does it."""
    try:
        yield
    except psycopg.errors.ForeignKeyViolation as exc:
        raise NotFound(f"a referenced record does not exist: {_detail(exc)}") from None
    except psycopg.IntegrityError as exc:
        raise Conflict(f"the change conflicts with stored data: {_detail(exc)}") from None
    except psycopg.DataError as exc:
        # A value PostgreSQL cannot take (NUL in text, a number out of range) that
        # validation let through: bad input, never a 500. The transaction rolled back.
        raise InvalidInput("input", f"the database refused a value: {_detail(exc)}") from None
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise StoreUnavailable(f"PostgreSQL is unavailable: {exc}") from exc


async def _configure(conn: Conn) -> None:
    """Read JSON columns as text: :func:`rows.read_json` decodes them like SQLite's.

    (psycopg would decode them itself, and a stored JSON string such as ``"done"``
    would then be indistinguishable from JSON text.)
    """
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)


def _detail(exc: psycopg.Error) -> str:
    return (exc.diag.message_detail or exc.diag.message_primary or str(exc)).strip()


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


class PostgresBase:
    """The state and plumbing the parts of
    :class:`~conveyor.store.postgres.store.PostgresStore` share: settings, pools,
    queries, the wake-up flag; opening, closing, migrating; portable statements."""

    dialect = "postgres"

    def __init__(self, url: str, *, clock: Clock = utcnow, pool_size: int = 10) -> None:
        self.url = url
        self.clock = clock
        self.pool_size = pool_size
        self._sql = load_queries("postgres")
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._claims: AsyncConnectionPool[Conn] | None = None
        self._capped: dict[tuple[str, str], tuple[bool, float]] = {}
        self._wakeup = asyncio.Event()
        self._listening = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    # -- plumbing ---------------------------------------------------------

    @property
    def pool(self) -> AsyncConnectionPool[Conn]:
        """The open connection pool."""
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        return self._pool

    def _q(self, name: str) -> LiteralString:
        # Our own queries.sql, never input (mypy reads LiteralString as str).
        return self._sql[name]

    def _claims_pool(self) -> AsyncConnectionPool[Conn]:
        """The claims' own pool (generic plans, see :meth:`open`)."""
        if self._claims is None:
            raise StoreUnavailable("the store is not open")
        return self._claims

    @contextlib.asynccontextmanager
    async def _connection(
        self, pool: AsyncConnectionPool[Conn] | None = None
    ) -> AsyncIterator[Conn]:
        """A connection of ``pool`` (the main one by default) in autocommit: each
        statement commits on its own."""
        with driver_errors():
            async with (pool or self.pool).connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection inside one transaction, committed on success."""
        async with self._connection() as conn, conn.transaction():
            yield conn

    async def _all(self, conn: Conn, name: str, params: dict[str, Any]) -> list[DictRow]:
        cursor = await conn.execute(self._q(name), params)
        return await cursor.fetchall()

    async def _values(self, conn: Conn, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows as plain tuples: cheaper than named rows where every one counts."""
        cursor = conn.cursor(row_factory=tuple_row)
        await cursor.execute(self._q(name), params)
        return await cursor.fetchall()

    async def _one(self, conn: Conn, name: str, params: dict[str, Any]) -> DictRow | None:
        cursor = await conn.execute(self._q(name), params)
        return await cursor.fetchone()

    async def _fetch(self, name: str, params: dict[str, Any]) -> list[DictRow]:
        """Run one statement on its own (it is atomic by itself)."""
        async with self._connection() as conn:
            return await self._all(conn, name, params)

    async def _event(
        self,
        conn: Conn,
        tenant_id: str,
        job_id: int | None,
        kind: EventType,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        params = {"tenant_id": tenant_id, "job_id": job_id, "type": str(kind), "now": now}
        await conn.execute(self._q("insert_event"), {**params, "data": _json(data)})

    def _job(self, row: DictRow) -> Job:
        return rows.job_from_row(row, from_db)

    async def _get_job(
        self, conn: Conn, tenant_id: str, job_id: int, query: str = "get_job"
    ) -> Job:
        row = await self._one(conn, query, {"tenant_id": tenant_id, "id": job_id})
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return self._job(row)

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        """Open the pools and wait for the first connection."""
        pool = self._new_pool("conveyor", min(2, self.pool_size), self.pool_size)
        # Claims get connections of their own, opened as claims need them (one per
        # worker claiming at once), on which prepared statements keep their generic
        # plan (plan_cache_mode): elsewhere PostgreSQL planned every claim again, as
        # a generic plan, not knowing the limit, looks dearer (0.5 ms a claim).
        claims = self._new_pool(
            "conveyor-claims", 0, self.pool_size, "-c plan_cache_mode=force_generic_plan"
        )
        try:
            with driver_errors():
                # One direct connection first: it fails at once, with the server's reason.
                await (await AsyncConnection.connect(self.url)).close()
                await pool.open(wait=True, timeout=10)
                await claims.open()
        except StoreUnavailable:
            await pool.close()
            await claims.close()
            raise
        self._pool, self._claims = pool, claims

    def _new_pool(
        self, name: str, min_size: int, max_size: int, options: str = ""
    ) -> AsyncConnectionPool[Conn]:
        """A pool of UTC sessions in autocommit, with ``options`` for the server."""
        return AsyncConnectionPool(
            self.url,
            connection_class=AsyncConnection[DictRow],
            # A UTC session: timestamptz values arrive in UTC, with nothing to convert.
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "options": f"-c TimeZone=UTC {options}".strip(),
            },
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=name,
            configure=_configure,
        )

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
            self._listening.clear()
        pool, claims, self._pool, self._claims = self._pool, self._claims, None, None
        try:
            if pool is not None:
                await pool.close()
        finally:
            if claims is not None:
                await claims.close()

    async def _schema_version(self, conn: Conn) -> int:
        cursor = await conn.execute(
            "SELECT to_regclass('schema_migrations') IS NOT NULL AS present"
        )
        present = await cursor.fetchone()
        if not present or not present["present"]:
            return 0
        cursor = await conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
        row = await cursor.fetchone()
        return int(row["v"]) if row else 0

    async def schema_version(self) -> int:
        """The highest migration applied (0 on an empty database)."""
        async with self._connection() as conn:
            return await self._schema_version(conn)

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction, one process at a time."""
        applied = []
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL)"
            )
            current = await self._schema_version(conn)
            for version, name, sql in migration_files(self.dialect):
                if version <= current:
                    continue
                await conn.execute(sql)  # our own migration files
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    (version, name, self.clock()),
                )
                applied.append(version)
        return applied

    async def check_schema(self) -> None:
        """Raise ``SchemaOutdated`` unless every migration is applied."""
        require_schema(self.dialect, await self.schema_version())

    # -- portable statements (conveyor.store.accounts) -----------------------------

    def read_time(self, value: Any) -> datetime:
        """A ``timestamptz`` value as a UTC datetime."""
        return from_db(value)

    async def run_sql(self, steps: SqlSteps, write: bool = True) -> list[list[dict[str, Any]]]:
        """Run statements in one transaction (reads: in autocommit), in order; each
        one's rows as dicts."""
        results: list[list[dict[str, Any]]] = []
        async with self._transaction() if write else self._connection() as conn:
            for sql, params in steps:
                cursor = await conn.execute(sql, params)
                results.append(await cursor.fetchall() if cursor.description else [])
        return results
