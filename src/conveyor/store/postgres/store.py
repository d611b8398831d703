"""The PostgreSQL store: many workers on many hosts.

psycopg 3 async on a connection pool. The hot paths (enqueue, claim, finish,
heartbeat, rescue, promote) are one statement each: data-modifying CTEs change the
jobs, write their attempt rows and events and send the LISTEN/NOTIFY wake-up in
one round trip. Single statements run in autocommit; operations of several
statements run in one explicit transaction. Times always come from ``self.clock``,
never from SQL ``now()``, so a test clock behaves the same as on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
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
    SchemaOutdated,
    StoreUnavailable,
)
from conveyor.domain.events import ARRIVAL_EVENT, Event, EventType
from conveyor.domain.jobs import (
    EDITABLE_FIELDS,
    Artifact,
    Attempt,
    Job,
    JobEdit,
    JobFilter,
    NewJob,
    check_name,
    utcnow,
)
from conveyor.domain.lifecycle import TERMINAL, Action, JobState, transition
from conveyor.domain.outcomes import Finish
from conveyor.store import rows
from conveyor.store.grouping import GroupCommit, Uncertain
from conveyor.store.listing import compile_query, job_list_query
from conveyor.store.protocol import Clock, QueueInfo, SqlSteps, WorkerInfo
from conveyor.store.queries import load_queries, migration_files

Conn: TypeAlias = AsyncConnection[DictRow]

CHANNEL = "conveyor_jobs"
_MIGRATION_LOCK = 0x636F6E76  # "conv": serialises concurrent migrate() calls
_CAS_TRIES = 5
_DEADLOCK_TRIES = 3
EXTRA_WRITER_AT = 100
"""Jobs waiting to be enqueued before a second transaction writes beside the first:
a batch, or a backlog; single enqueues keep sharing one."""
_LOST = {"type": "LeaseExpired", "message": "the worker stopped heartbeating", "traceback": ""}


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


@contextlib.contextmanager
def _stored() -> Iterator[None]:
    """For what follows a write that has committed: any error, translated, becomes
    ``Uncertain``, so that the write is not made again."""
    try:
        with driver_errors():
            yield
    except Exception as exc:
        raise Uncertain(exc) from exc


def _detail(exc: psycopg.Error) -> str:
    return (exc.diag.message_detail or exc.diag.message_primary or str(exc)).strip()


class PostgresStore:
    """The :class:`~conveyor.store.protocol.Store` on PostgreSQL (13 or later)."""

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
        self._enqueues: GroupCommit[NewJob, Job | Conflict] = GroupCommit(
            self._enqueue_group, writers=2, extra_writer_at=EXTRA_WRITER_AT
        )
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
        current = await self.schema_version()
        required = migration_files(self.dialect)[-1][0]
        if current < required:
            raise SchemaOutdated(current, required)

    # -- enqueue and read ---------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert jobs in one transaction (shared with concurrent calls: group commit);
        a known ``message_id`` returns the first job."""
        if not jobs:
            return []
        answers = await self._enqueues.submit(jobs)
        for answer in answers:
            if isinstance(answer, Conflict):
                raise answer
        return [answer for answer in answers if isinstance(answer, Job)]

    async def _enqueue_group(self, jobs: list[NewJob]) -> list[Job | Conflict]:
        """Write a group: an error of its insert (which commits on its own) stored
        nothing, unless the connection was lost; any later error comes after the jobs
        were stored (see ``GroupCommit``)."""
        try:
            async with self._connection() as conn:
                now, states, inserted = await self._insert_jobs(conn, jobs)
                with _stored():
                    answers = await self._answers(conn, jobs, states, inserted, now)
        except StoreUnavailable as exc:  # lost around the commit: some may be stored
            raise Uncertain(exc) from exc
        self._wakeup.set()
        return answers

    async def _answers(
        self,
        conn: Conn,
        jobs: list[NewJob],
        states: list[JobState],
        inserted: list[DictRow],
        now: datetime,
    ) -> list[Job | Conflict]:
        """Each job as stored, in input order: an inserted one as built, a known
        message_id's first job read back (``Conflict`` if it is gone meanwhile)."""
        answers: list[Job | Conflict] = []
        for job, state, row in zip(jobs, states, _match_inserted(jobs, inserted), strict=True):
            if row is not None:
                answers.append(job.as_job(row["id"], state, now))
                continue
            key = {"tenant_id": job.tenant_id, "message_id": job.message_id}
            first = await self._one(conn, "job_by_message_id", key)
            answers.append(
                self._job(first)
                if first is not None
                else Conflict(f"message {job.message_id!r} is being enqueued")
            )
        return answers

    async def _insert_jobs(
        self, conn: Conn, jobs: list[NewJob]
    ) -> tuple[datetime, list[JobState], list[DictRow]]:
        """Insert the jobs in one statement, so one transaction and one round trip; the
        rows of those not skipped for a known message_id, and the time and states used.

        Two batches that take the same message ids in opposite orders wait for each
        other; PostgreSQL fails one of them, whole, and once the other has committed it
        passes: it is sent again (with a new time), up to ``_DEADLOCK_TRIES`` times.
        """
        for _ in range(_DEADLOCK_TRIES - 1):
            with contextlib.suppress(psycopg.errors.DeadlockDetected):
                return await self._insert_jobs_once(conn, jobs)
        return await self._insert_jobs_once(conn, jobs)

    async def _insert_jobs_once(
        self, conn: Conn, jobs: list[NewJob]
    ) -> tuple[datetime, list[JobState], list[DictRow]]:
        now = self.clock()
        states = [job.initial_state(now) for job in jobs]
        params = {"batch": _batch(jobs, states), "now": now, "event": str(EventType.JOB_ENQUEUED)}
        return now, states, await self._all(conn, "insert_job", params)

    async def _get_job(
        self, conn: Conn, tenant_id: str, job_id: int, query: str = "get_job"
    ) -> Job:
        row = await self._one(conn, query, {"tenant_id": tenant_id, "id": job_id})
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        return self._job(row)

    async def get_job(self, tenant_id: str, job_id: int) -> Job:
        """One job, or ``NotFound``."""
        async with self._connection() as conn:
            return await self._get_job(conn, tenant_id, job_id)

    async def list_jobs(self, tenant_id: str, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters``, newest first by default."""
        sql, params = compile_query(self.dialect, job_list_query(self.dialect, tenant_id, filters))
        async with self._connection() as conn:
            cursor = await conn.execute(sql, params)  # built by SQLAlchemy, values bound
            return [self._job(r) for r in await cursor.fetchall()]

    async def list_job_events(self, tenant_id: str, job_id: int, limit: int = 1000) -> list[Event]:
        """One job's events, oldest first (a job's changes commit in id order)."""
        params = {"tenant_id": tenant_id, "job_id": job_id, "limit": limit}
        found = await self._fetch("list_job_events", params)
        return [rows.event_from_row(r, from_db) for r in found]

    async def list_attempts(self, tenant_id: str, job_id: int) -> list[Attempt]:
        """A job's finished attempts, oldest first."""
        found = await self._fetch("list_attempts", {"tenant_id": tenant_id, "job_id": job_id})
        return [rows.attempt_from_row(r, from_db) for r in found]

    # -- claim, heartbeat, finish --------------------------------------------

    async def _claim_limit(self, conn: Conn, key: dict[str, Any], limit: int) -> int:
        """How many jobs this claim may take: 0 when paused, at the cap or tenant inactive."""
        settings = await self._one(conn, "queue_settings", key)
        if settings is not None:
            if settings["paused"]:
                return 0
            if settings["concurrency"] is not None:  # the queue row is now locked
                running = await self._one(conn, "count_running_in_queue", key)
                limit = min(limit, settings["concurrency"] - (running["n"] if running else 0))
        if limit <= 0:
            return 0
        status = await self._one(conn, "tenant_status", {"tenant_id": key["tenant_id"]})
        return limit if status is not None and status["status"] == "active" else 0

    async def claim(
        self,
        tenant_id: str,
        queue: str,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        urgent_only: bool = False,
    ) -> list[Job]:
        """Move up to ``limit`` available jobs of a queue to running, in claim order.

        Most queues have no concurrency limit: their claim is one statement that
        checks pause and tenant status itself (one round trip). A queue known to
        have a limit is claimed in a transaction that locks its row while it counts
        running jobs. What is known is refreshed every second; meanwhile a newly
        limited queue is simply not claimed by the one-statement path.

        The claim's time (``started_at``, the lease) is read just before the statement
        is sent, with the connection in hand: a job promoted while this claim waited
        for a connection must not get a start time from before its promotion.
        """
        key = {"tenant_id": tenant_id, "queue": queue}
        params: dict[str, Any] = {
            **key,
            "worker_id": worker_id,
            "event": str(EventType.JOB_STARTED),
        }
        name = "claim_urgent_jobs" if urgent_only else "claim_jobs"

        def stamped(allowed: int, gated: bool) -> dict[str, Any]:
            now = self.clock()
            expires = now + timedelta(seconds=lease_seconds)
            return {
                **params,
                "limit": allowed,
                "gated": gated,
                "now": now,
                "lease_expires_at": expires,
            }

        if not await self._is_capped(tenant_id, queue):
            async with self._connection(self._claims_pool()) as conn:
                claimed = await self._values(conn, name, stamped(limit, True))
        else:
            async with self._connection(self._claims_pool()) as conn, conn.transaction():
                allowed = await self._claim_limit(conn, key, limit)
                if allowed <= 0:
                    return []
                claimed = await self._values(conn, name, stamped(allowed, False))
        jobs = [rows.job_from_values(values, from_db) for values in claimed]
        return sorted(jobs, key=_claim_order)

    async def _is_capped(self, tenant_id: str, queue: str) -> bool:
        """Whether the queue has a concurrency limit, as read at most a second ago."""
        cached = self._capped.get((tenant_id, queue))
        loop_time = asyncio.get_running_loop().time()
        if cached is not None and loop_time - cached[1] < 1.0:
            return cached[0]
        row = await self._fetch("queue_rows", {"tenant_id": tenant_id})
        capped = any(r["name"] == queue and r["concurrency"] is not None for r in row)
        self._capped[(tenant_id, queue)] = (capped, loop_time)
        return capped

    async def heartbeat(
        self, worker_id: str, held: Sequence[tuple[int, int]], lease_seconds: float
    ) -> set[int]:
        """Extend the leases of (job id, attempt) pairs; return the ids still held."""
        if not held:
            return set()
        wanted = dict(held)
        extended = await self._fetch(
            "heartbeat",
            {
                "worker_id": worker_id,
                "ids": list(wanted),
                "attempts": list(wanted.values()),
                "lease_expires_at": self.clock() + timedelta(seconds=lease_seconds),
            },
        )
        return {r["id"] for r in extended if wanted.get(r["id"]) == r["attempt"]}

    async def finish(self, finishes: Sequence[Finish]) -> list[bool]:
        """End attempts; an item whose attempt lost its lease is refused (``False``)."""
        if not finishes:
            return []
        now = self.clock()
        found = await self._fetch("finish_job", {**_finish_params(finishes, now), "now": now})
        accepted = {r["ord"] for r in found}
        return [position in accepted for position in range(1, len(finishes) + 1)]

    async def rescue_expired(self) -> list[int]:
        """Return jobs whose lease expired to available (or discarded); their ids."""
        rescued = await self._fetch(
            "rescue_expired",
            {
                "now": self.clock(),
                "error": _json(_LOST),
                "discarded_event": str(EventType.JOB_DISCARDED),
                "rescued_event": str(EventType.JOB_RESCUED),
            },
        )
        if rescued:
            self._wakeup.set()
        return [r["id"] for r in rescued]

    async def promote_due(self, limit: int = 1000) -> int:
        """Make scheduled and retryable jobs whose time has come available."""
        params = {"now": self.clock(), "limit": limit, "event": str(EventType.JOB_AVAILABLE)}
        (row,) = await self._fetch("promote_due", params)
        promoted = int(row["n"])
        if promoted:
            self._wakeup.set()
        return promoted

    async def next_due_at(self) -> datetime | None:
        """When the earliest waiting job becomes due, if any."""
        (row,) = await self._fetch("next_due_at", {})
        return None if row["due"] is None else from_db(row["due"])

    # -- single-job operations -------------------------------------------------

    async def _compare_and_set(
        self,
        conn: Conn,
        tenant_id: str,
        job_id: int,
        action: Action,
        to_state: JobState,
        task_version: int | None,
    ) -> tuple[Job, DictRow]:
        """Check the transition and write it; re-read if another writer got there first."""
        now = self.clock()
        for _ in range(_CAS_TRIES):
            job = await self._get_job(conn, tenant_id, job_id)
            transition(action, job.state, to_state, job_id)
            params = _state_params(job, action, to_state, now, task_version)
            row = await self._one(conn, "set_state", params)
            if row is not None:
                return job, row
        raise Conflict(f"job {job_id} keeps changing; try again")

    async def _change_state(
        self,
        tenant_id: str,
        job_id: int,
        action: Action,
        to_state: JobState,
        reason: str,
        task_version: int | None = None,
    ) -> Job:
        now = self.clock()
        async with self._transaction() as conn:
            job, row = await self._compare_and_set(
                conn, tenant_id, job_id, action, to_state, task_version
            )
            if job.state is JobState.RUNNING:
                cancelled = {"type": "Cancelled", "message": reason, "traceback": ""}
                await self._record_attempt(conn, row, job.attempt, "cancelled", cancelled, now)
            retrying = action is Action.RETRY
            kind = EventType.JOB_RETRIED if retrying else ARRIVAL_EVENT[to_state]
            data = {"from": str(job.state), "reason": reason}
            await self._event(conn, tenant_id, job_id, kind, data, now)
        if action is Action.RETRY:
            self._wakeup.set()
        return self._job(row)

    async def _record_attempt(
        self,
        conn: Conn,
        row: DictRow,
        attempt: int,
        outcome: str,
        error: dict[str, str] | None,
        now: datetime,
    ) -> None:
        await conn.execute(
            self._q("insert_attempt"),
            {
                "job_id": row["id"],
                "attempt": attempt,
                "tenant_id": row["tenant_id"],
                "worker_id": row["worker_id"] or "",
                "started_at": row["started_at"] or now,
                "now": now,
                "outcome": outcome,
                "error": rows.dump_json(error),
                "task_version": row["task_version"],
            },
        )

    async def cancel_job(self, tenant_id: str, job_id: int, reason: str) -> Job:
        """Cancel a job that has not finished, or raise ``IllegalTransition``."""
        return await self._change_state(
            tenant_id, job_id, Action.CANCEL, JobState.CANCELLED, reason
        )

    async def retry_job(self, tenant_id: str, job_id: int, task_version: int | None = None) -> Job:
        """Make a finished job available again, keeping its history; with
        ``task_version``, it runs with that version of its task's settings."""
        return await self._change_state(
            tenant_id, job_id, Action.RETRY, JobState.AVAILABLE, "retried", task_version
        )

    async def edit_job(self, tenant_id: str, job_id: int, edit: JobEdit) -> Job:
        """Apply ``edit`` to a job that has not started, or raise ``NotEditable``.

        The job's row is locked from the read to the commit, so a claim cannot take it
        half-way and a concurrent change cannot be overwritten with stale values.
        """
        now = self.clock()
        async with self._transaction() as conn:
            job = await self._get_job(conn, tenant_id, job_id, "lock_job")
            to_state = edit.state_after(job, now)
            if to_state is job.state and not edit.changed_fields(job):
                return job
            params = _edit_params(edit.apply(job), job.state, to_state)
            event = {
                "event": str(EventType.JOB_EDITED),
                "data": _json(edit.event_data(job, to_state)),
            }
            row = await self._one(conn, "edit_job", {**params, **event, "now": now})
        if row is None:  # pragma: no cover - the row is locked since the read
            raise Conflict(f"job {job_id} changed while it was edited; try again")
        self._wakeup.set()
        return self._job(row)

    async def _on_running(
        self, conn: Conn, query: str, params: dict[str, Any], kind: EventType, data: dict[str, Any]
    ) -> DictRow | None:
        """Touch the running attempt and write its event in one statement (fenced)."""
        event = {"event": str(kind), "data": _json(data), "now": self.clock()}
        return await self._one(conn, query, {**params, **event})

    async def record_progress(
        self, job_id: int, attempt: int, fraction: float, message: str | None
    ) -> bool:
        """Store a running attempt's progress; ``False`` if it lost its lease."""
        params = {"id": job_id, "attempt": attempt, "progress": fraction, "message": message}
        data = {"attempt": attempt, "progress": fraction, "message": message}
        async with self._connection() as conn:
            row = await self._on_running(
                conn, "record_progress", params, EventType.JOB_PROGRESS, data
            )
        return row is not None

    async def add_note(self, job_id: int, attempt: int, text: str) -> bool:
        """Append a note to a running attempt; ``False`` if it lost its lease."""
        params = {"id": job_id, "attempt": attempt}
        data = {"attempt": attempt, "text": text}
        async with self._connection() as conn:
            row = await self._on_running(conn, "touch_running", params, EventType.JOB_NOTE, data)
        return row is not None

    async def add_artifact(
        self, job_id: int, attempt: int, name: str, size: int, sha256: str, path: str
    ) -> Artifact:
        """Record a file a running attempt produced."""
        fence = {"id": job_id, "attempt": attempt}
        data = {"name": name, "size": size, "sha256": sha256}
        async with self._transaction() as conn:
            owner = await self._on_running(
                conn, "touch_running", fence, EventType.JOB_ARTIFACT, data
            )
            if owner is None:
                raise NotFound(f"job {job_id} attempt {attempt} is not running")
            row = await self._one(
                conn,
                "insert_artifact",
                {
                    **data,
                    "tenant_id": owner["tenant_id"],
                    "job_id": job_id,
                    "path": path,
                    "now": self.clock(),
                },
            )
        if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
            raise StoreUnavailable("the artifact was not stored")
        return rows.artifact_from_row(row, from_db)

    async def list_artifacts(self, tenant_id: str, job_id: int) -> list[Artifact]:
        """A job's files, oldest first."""
        found = await self._fetch("list_artifacts", {"tenant_id": tenant_id, "job_id": job_id})
        return [rows.artifact_from_row(r, from_db) for r in found]

    # -- queues, stats, events, workers ------------------------------------------

    async def _set_queue(
        self, query: str, tenant_id: str, name: str, value: dict[str, Any], kind: EventType
    ) -> QueueInfo:
        check_name("queue", name)
        now = self.clock()
        async with self._transaction() as conn:
            await conn.execute(
                self._q(query), {"tenant_id": tenant_id, "queue": name, "now": now, **value}
            )
            await self._event(conn, tenant_id, None, kind, {"queue": name, **value}, now)
        self._capped.pop((tenant_id, name), None)
        return next(q for q in await self.list_queues(tenant_id) if q.name == name)

    async def pause_queue(self, tenant_id: str, name: str, paused: bool) -> QueueInfo:
        """Pause (no new claims) or resume a queue."""
        kind = EventType.QUEUE_PAUSED if paused else EventType.QUEUE_RESUMED
        return await self._set_queue("pause_queue", tenant_id, name, {"paused": paused}, kind)

    async def limit_queue(self, tenant_id: str, name: str, concurrency: int | None) -> QueueInfo:
        """Cap how many of a queue's jobs run at once across all workers (``None``: no cap)."""
        if concurrency is not None and concurrency < 0:
            raise InvalidInput("concurrency", "must be zero or more")
        return await self._set_queue(
            "limit_queue", tenant_id, name, {"concurrency": concurrency}, EventType.QUEUE_CHANGED
        )

    async def count_jobs(self, tenant_id: str) -> dict[tuple[str, JobState], int]:
        """Job counts by (queue, state)."""
        found = await self._fetch("count_jobs", {"tenant_id": tenant_id})
        return {(r["queue"], JobState(r["state"])): int(r["n"]) for r in found}

    async def list_queues(self, tenant_id: str) -> list[QueueInfo]:
        """Every queue that has settings or jobs, with counts by state."""
        settings = {r["name"]: r for r in await self._fetch("queue_rows", {"tenant_id": tenant_id})}
        counts = await self.count_jobs(tenant_id)
        names = sorted(set(settings) | {queue for queue, _ in counts})
        return [
            QueueInfo(
                name=name,
                paused=bool(settings[name]["paused"]) if name in settings else False,
                concurrency=settings[name]["concurrency"] if name in settings else None,
                counts={state: n for (queue, state), n in counts.items() if queue == name},
            )
            for name in names
        ]

    async def list_events(
        self, tenant_id: str | None, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Committed events after a cursor, in order; never skips a late commit.

        Only events of transactions older than every open one are returned, in
        (transaction, id) order: an event whose id was taken early but committed
        late sorts after the cursor instead of behind it.
        """
        found = await self._fetch(
            "list_events", {"tenant_id": tenant_id, "after_id": after_id, "limit": limit}
        )
        return [rows.event_from_row(r, from_db) for r in found]

    async def event_horizon(self, after_id: int = 0) -> int:
        """The last event, in ``list_events`` order, of the transactions older than
        every one still open; ``after_id`` if that is not after it."""
        [row] = await self._fetch("event_horizon", {"after_id": after_id})
        return int(row["id"])

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Record (or refresh) a worker's presence."""
        await self._execute(
            "upsert_worker",
            {
                "id": worker.id,
                "tenant_id": worker.tenant_id,
                "hostname": worker.hostname,
                "pid": worker.pid,
                "queues": json.dumps(list(worker.queues)),
                "concurrency": worker.concurrency,
                "started_at": worker.started_at,
                "now": self.clock(),
            },
        )

    async def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped."""
        await self._execute("delete_worker", {"id": worker_id})

    async def _execute(self, name: str, params: dict[str, Any]) -> None:
        async with self._connection() as conn:
            await conn.execute(self._q(name), params)

    async def list_workers(self, tenant_id: str) -> list[WorkerInfo]:
        """Workers seen recently."""
        found = await self._fetch("list_workers", {"tenant_id": tenant_id})
        return [rows.worker_from_row(r, from_db) for r in found]

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

    # -- wake-ups -------------------------------------------------------------

    async def wait_for_work(self, max_wait: float) -> None:
        """Return on a NOTIFY (from any process) or this store's own write, else after ``max_wait``.

        A wake-up is only a hint: notifications are lost while the listening
        connection is down, so callers still poll.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="conveyor-pg-listener")
            with contextlib.suppress(TimeoutError):  # start listening before waiting
                async with asyncio.timeout_at(deadline):
                    await self._listening.wait()
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
        try:
            async with asyncio.timeout_at(deadline):
                await self._wakeup.wait()
        except TimeoutError:
            return
        self._wakeup.clear()

    async def _listen(self) -> None:
        """Keep one dedicated connection LISTENing; reconnect with backoff when it drops."""
        backoff = 0.1
        reconnecting = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if reconnecting:  # work may have arrived while nobody listened
                        self._wakeup.set()
                    backoff = 0.1
                    async for _ in conn.notifies():
                        self._wakeup.set()
            except psycopg.Error:
                self._listening.clear()
            reconnecting = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


# -- parameters ---------------------------------------------------------------------


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _json(value: Any) -> str:
    return _ENCODER.encode(value)


def _claim_order(job: Job) -> tuple[int, datetime, int]:
    return (job.priority, job.run_at, job.id)


def _batch(jobs: Sequence[NewJob], states: Sequence[JobState]) -> str:
    """``insert_job``'s JSON array, one object per job, ``ord`` keeping input order."""
    return _json(
        [
            {
                "tenant_id": j.tenant_id,
                "task": j.task,
                "queue": j.queue,
                "state": str(state),
                "priority": j.priority,
                "run_at": j.run_at.isoformat(),
                "payload": j.payload,
                "max_attempts": j.max_attempts,
                "timeout": j.timeout,
                "message_id": j.message_id,
                "content_type": j.content_type,
                "content_encoding": j.content_encoding,
                "key": j.key,
                "tags": list(j.tags),
                "assignee": j.assignee,
                "immediate": j.immediate,
                "task_version": j.task_version,
                "created_by": j.created_by,
                "ord": position,
            }
            for position, (j, state) in enumerate(zip(jobs, states, strict=True), start=1)
        ]
    )


def _match_inserted(jobs: Sequence[NewJob], inserted: Sequence[DictRow]) -> list[DictRow | None]:
    """Pair each requested job with its inserted row (in input order), ``None`` if skipped.

    Only a job with a ``message_id`` can be skipped, and a skipped message id never
    appears among the inserted rows after it.
    """
    pending = iter(inserted)
    row = next(pending, None)
    paired: list[DictRow | None] = []
    for job in jobs:
        if row is not None and (
            job.message_id is None
            or (row["tenant_id"], row["message_id"]) == (job.tenant_id, job.message_id)
        ):
            paired.append(row)
            row = next(pending, None)
        else:
            paired.append(None)
    return paired


# A completion with nothing else to record (most of a batch): formatted, not encoded.
# Ids and attempts are ints; the time, outcome and event are our own fixed strings.
_COMPLETED_ITEM = (
    '{"id":%d,"attempt":%d,"state":"completed","finished_at":"%s","outcome":"%s",'
    '"event":"%s","data":{"attempt":%d},"ord":%d}'
)


def _finish_params(finishes: Sequence[Finish], now: datetime) -> dict[str, Any]:
    """``finish_job``'s JSON array; events get the task in SQL."""
    finished_at = now.isoformat()
    items = [
        _COMPLETED_ITEM
        % (item.job_id, item.attempt, finished_at, item.outcome, item.event, item.attempt, position)
        if item.plain
        else _json(_finish_item(item, position, finished_at))
        for position, item in enumerate(finishes, start=1)
    ]
    return {"items": "[" + ",".join(items) + "]"}


def _finish_item(item: Finish, position: int, finished_at: str) -> dict[str, Any]:
    """One item of ``finish_job``'s JSON array."""
    error = item.error.to_dict() if item.error else None
    return {
        "id": item.job_id,
        "attempt": item.attempt,
        "state": str(item.state),
        "run_at": item.run_at.isoformat() if item.run_at else None,
        "result": item.result,
        "error": error,
        "finished_at": finished_at if item.state in TERMINAL else None,
        "outcome": item.outcome,
        "event": str(item.event),
        "data": _finish_data(item, error),
        "ord": position,
    }


def _finish_data(item: Finish, error: dict[str, str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"attempt": item.attempt}
    if error:
        data["error"] = {"type": error["type"], "message": error["message"]}
    if item.run_at is not None:
        data["retry_at"] = item.run_at.isoformat()
    return data


def _edit_params(edited: Job, from_state: JobState, to_state: JobState) -> dict[str, Any]:
    """``edit_job``'s parameters: ``edited`` holds the new values."""
    values = {name: getattr(edited, name) for name in EDITABLE_FIELDS}
    values["payload"] = _json(edited.payload)
    values["tags"] = _json(list(edited.tags))
    states = {"from_state": str(from_state), "to_state": str(to_state)}
    return {**values, **states, "tenant_id": edited.tenant_id, "id": edited.id}


def _state_params(
    job: Job, action: Action, to_state: JobState, now: datetime, task_version: int | None = None
) -> dict[str, Any]:
    """``set_state`` parameters for a cancel or a retry of ``job`` (a retry may set the
    task version it runs with)."""
    retrying = action is Action.RETRY
    return {
        "tenant_id": job.tenant_id,
        "id": job.id,
        "from_state": str(job.state),
        "to_state": str(to_state),
        "now": now,
        "finished_at": now if to_state in TERMINAL else None,
        "run_at": now if retrying else None,
        "max_attempts": max(job.max_attempts, job.attempt + 1) if retrying else job.max_attempts,
        "result": None if retrying else rows.dump_json(job.result),
        "error": None if retrying or job.error is None else _json(job.error.to_dict()),
        "task_version": task_version,
    }


__all__ = ["CHANNEL", "PostgresStore", "driver_errors", "from_db"]
