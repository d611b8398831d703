"""The SQLite store's shared state and plumbing: the connection and its thread, write
transactions, migrations, portable statements, and what more than one role needs
(see :mod:`~conveyor.store.sqlite.store`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from conveyor.domain.errors import Conflict, NotFound, StoreUnavailable
from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job, utcnow
from conveyor.store import rows
from conveyor.store.protocol import Clock, SqlSteps
from conveyor.store.queries import load_queries, migration_files, require_schema

T = TypeVar("T")
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


def to_db(moment: datetime | None) -> float | None:
    """Times are stored as UTC seconds since the epoch."""
    return None if moment is None else moment.timestamp()


def from_db(value: Any) -> datetime:
    """The inverse of :func:`to_db`."""
    return datetime.fromtimestamp(float(value), UTC)


class SQLiteBase:
    """What every role of :class:`~conveyor.store.sqlite.store.SQLiteStore` shares:
    the connection, its thread, the queries, the clock and the wake-up flag; opening,
    closing, migrating; portable statements."""

    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 10_000,
        clock: Clock = utcnow,
        create: bool = True,
    ) -> None:
        self.path = str(path)
        self.create = create
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.clock = clock
        self._sql = load_queries("sqlite")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._wakeup = asyncio.Event()
        self._data_version = -1

    # -- plumbing ---------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite database {self.path}: {exc}") from exc
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise NotFound("the tenant or job referred to does not exist") from None
            raise

    def _connect(self) -> None:
        if self.path != ":memory:" and not self.create and not Path(self.path).exists():
            raise StoreUnavailable(
                f"there is no database at {self.path}: create it with `conveyor db upgrade`"
            )
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from None
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection (only touched from the store's thread)."""
        if self._conn is None:
            raise StoreUnavailable("the store is not open")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _q(self, name: str) -> str:
        return self._sql[name]

    def _now(self) -> float:
        return self.clock().timestamp()

    def _event(
        self,
        conn: sqlite3.Connection,
        tenant_id: str,
        job_id: int | None,
        kind: EventType,
        data: dict[str, Any],
        now: float,
    ) -> None:
        conn.execute(
            self._q("insert_event"),
            {
                "tenant_id": tenant_id,
                "job_id": job_id,
                "type": str(kind),
                "data": json.dumps(data, separators=(",", ":")),
                "now": now,
            },
        )

    def _job(self, row: rows.Row) -> Job:
        return rows.job_from_row(row, from_db)

    def _found_job(self, row: sqlite3.Row | None, job_id: int) -> Job:
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return self._job(row)

    # -- used by more than one role -----------------------------------------

    def _get_job(self, tenant_id: str, job_id: int) -> Job:
        found = self.conn.execute(self._q("get_job"), {"tenant_id": tenant_id, "id": job_id})
        return self._found_job(found.fetchone(), job_id)

    def _select(self, name: str, params: dict[str, Any]) -> list[sqlite3.Row]:
        return list(self.conn.execute(self._q(name), params))

    def _record_attempt(
        self,
        conn: sqlite3.Connection,
        row: sqlite3.Row,
        attempt: int,
        outcome: str,
        error: dict[str, str] | None,
        now: float,
    ) -> None:
        conn.execute(
            self._q("insert_attempt"),
            {
                "job_id": row["id"],
                "attempt": attempt,
                "tenant_id": row["tenant_id"],
                "worker_id": row["worker_id"] or "",
                "started_at": row["started_at"] if row["started_at"] is not None else now,
                "now": now,
                "outcome": outcome,
                "error": rows.dump_json(error),
                "task_version": row["task_version"],
            },
        )

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        """Open the file (created if missing) and set WAL and durability."""
        await self._run(self._connect)

    async def close(self) -> None:
        """Close the connection and the store's thread."""
        if self._conn is not None:
            await self._run(self.conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    def _schema_version(self) -> int:
        exists = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if not exists:
            return 0
        row = self.conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    async def schema_version(self) -> int:
        """The highest migration applied."""
        return await self._run(self._schema_version)

    def _migrate(self) -> list[int]:
        applied = []
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            current = self._schema_version()
            for version, name, sql in migration_files(self.dialect):
                if version <= current:
                    continue
                for statement in _split_statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, self._now())
                )
                applied.append(version)
        return applied

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction."""
        return await self._run(self._migrate)

    async def check_schema(self) -> None:
        """Raise ``SchemaOutdated`` unless every migration is applied."""
        require_schema(self.dialect, await self.schema_version())

    # -- portable statements (conveyor.store.accounts) -----------------------------

    def read_time(self, value: Any) -> datetime:
        """A time column's value (epoch seconds) as a UTC datetime."""
        return from_db(value)

    def _run_sql(self, steps: SqlSteps, write: bool) -> list[list[dict[str, Any]]]:
        try:
            with self._write() if write else contextlib.nullcontext(self.conn) as conn:
                return [[dict(r) for r in conn.execute(sql, _db_params(p))] for sql, p in steps]
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise Conflict(f"the change conflicts with stored data: {exc}") from None
            raise

    async def run_sql(self, steps: SqlSteps, write: bool = True) -> list[list[dict[str, Any]]]:
        """Run statements in one write transaction (or, for reads, none), in order;
        each one's rows as dicts."""
        return await self._run(self._run_sql, steps, write)


def _db_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_db(v) if isinstance(v, datetime) else v for k, v in params.items()}


def _split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no ';' in literals)."""
    return [s.strip() for s in sql.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(chunk: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in chunk.splitlines())
