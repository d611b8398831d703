"""The SQLite store: the embedded default.

One connection, used from one thread, in WAL mode. Every write transaction
starts with ``BEGIN IMMEDIATE`` (a deferred transaction that upgrades to a write
fails at once with SQLITE_BUSY, ignoring ``busy_timeout``). Each public method
runs one whole transaction in that thread, so a claim or a batch of completions
is one hop from the event loop and one commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

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
from conveyor.store.grouping import GroupCommit
from conveyor.store.listing import compile_query, job_list_query
from conveyor.store.protocol import Clock, QueueInfo, SqlSteps, WorkerInfo
from conveyor.store.queries import load_queries, migration_files

T = TypeVar("T")
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_ENCODER = json.JSONEncoder(separators=(",", ":"))
OTHER_PROCESS_POLL = 0.005  # seconds between checks for other processes' commits
_LOST = {"type": "LeaseExpired", "message": "the worker stopped heartbeating", "traceback": ""}


def to_db(moment: datetime | None) -> float | None:
    """Times are stored as UTC seconds since the epoch."""
    return None if moment is None else moment.timestamp()


def from_db(value: Any) -> datetime:
    """The inverse of :func:`to_db`."""
    return datetime.fromtimestamp(float(value), UTC)


class SQLiteStore:
    """The :class:`~conveyor.store.protocol.Store` on one SQLite file."""

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
        self._enqueues: GroupCommit[NewJob, Job] = GroupCommit(self._enqueue_group)
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
        current = await self.schema_version()
        required = migration_files(self.dialect)[-1][0]
        if current < required:
            raise SchemaOutdated(current, required)

    # -- enqueue and read ---------------------------------------------------

    def _enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        now_dt = self.clock()
        now = now_dt.timestamp()
        states = [job.initial_state(now_dt) for job in jobs]
        batch = json.dumps(
            [_job_params(job, state) for job, state in zip(jobs, states, strict=True)]
        )
        with self._write() as conn:
            inserted = conn.execute(self._q("insert_job"), {"batch": batch, "now": now})
            ids = sorted(row[0] for row in inserted)
            if len(ids) == len(jobs):
                new = [
                    job.as_job(i, s, now_dt) for job, s, i in zip(jobs, states, ids, strict=True)
                ]
            else:
                new = self._with_known(conn, jobs, states, ids, now_dt)
            if ids:
                conn.execute(
                    self._q("insert_enqueued_events"),
                    {
                        "type": str(EventType.JOB_ENQUEUED),
                        "low": ids[0],
                        "high": ids[-1],
                        "now": now,
                    },
                )
        return new

    def _with_known(
        self,
        conn: sqlite3.Connection,
        jobs: Sequence[NewJob],
        states: list[JobState],
        ids: list[int],
        now: datetime,
    ) -> list[Job]:
        """The batch in input order, where a known message_id stands for its first job."""
        fresh = iter(ids)
        created = set(ids)
        result: list[Job] = []
        for job, state in zip(jobs, states, strict=True):
            if job.message_id is not None:
                params = {"tenant_id": job.tenant_id, "message_id": job.message_id}
                first = self._job(conn.execute(self._q("job_by_message_id"), params).fetchone())
                if first.id not in created:  # known before, or a repeat within this batch
                    result.append(first)
                    continue
                created.discard(first.id)
            result.append(job.as_job(next(fresh), state, now))
        return result

    async def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert jobs in one transaction (shared with concurrent calls: group commit);
        a known ``message_id`` returns the first job."""
        if not jobs:
            return []
        return await self._enqueues.submit(jobs)

    async def _enqueue_group(self, jobs: list[NewJob]) -> list[Job]:
        created = await self._run(self._enqueue, jobs)
        self._wakeup.set()  # this process's workers: its own commits leave data_version alone
        return created

    def _get_job(self, tenant_id: str, job_id: int) -> Job:
        found = self.conn.execute(self._q("get_job"), {"tenant_id": tenant_id, "id": job_id})
        return self._found_job(found.fetchone(), job_id)

    async def get_job(self, tenant_id: str, job_id: int) -> Job:
        """One job, or ``NotFound``."""
        return await self._run(self._get_job, tenant_id, job_id)

    def _list_jobs(self, tenant_id: str, filters: JobFilter) -> list[Job]:
        sql, params = compile_query(self.dialect, job_list_query(self.dialect, tenant_id, filters))
        return [self._job(r) for r in self.conn.execute(sql, params)]

    async def list_jobs(self, tenant_id: str, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters``."""
        return await self._run(self._list_jobs, tenant_id, filters)

    def _select(self, name: str, params: dict[str, Any]) -> list[sqlite3.Row]:
        return list(self.conn.execute(self._q(name), params))

    async def list_job_events(self, tenant_id: str, job_id: int, limit: int = 1000) -> list[Event]:
        """One job's events, oldest first."""
        params = {"tenant_id": tenant_id, "job_id": job_id, "limit": limit}
        found = await self._run(self._select, "list_job_events", params)
        return [rows.event_from_row(r, from_db) for r in found]

    async def list_attempts(self, tenant_id: str, job_id: int) -> list[Attempt]:
        """A job's finished attempts, oldest first."""
        found = await self._run(
            self._select, "list_attempts", {"tenant_id": tenant_id, "job_id": job_id}
        )
        return [rows.attempt_from_row(r, from_db) for r in found]

    # -- claim, heartbeat, finish --------------------------------------------

    def _claim(
        self,
        tenant_id: str,
        queue: str,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        urgent_only: bool,
    ) -> list[sqlite3.Row]:
        with self._write() as conn:
            now = self._now()  # once the lock is held: what another process promoted is due
            key = {"tenant_id": tenant_id, "queue": queue}
            settings = conn.execute(self._q("queue_settings"), key).fetchone()
            if settings is not None:
                if settings["paused"]:
                    return []
                if settings["concurrency"] is not None:
                    running = conn.execute(self._q("count_running_in_queue"), key).fetchone()[0]
                    limit = min(limit, settings["concurrency"] - running)
            if limit <= 0:
                return []
            status = conn.execute(self._q("tenant_status"), {"tenant_id": tenant_id}).fetchone()
            if status is None or status[0] != "active":
                return []
            claimed = conn.execute(
                self._q("claim_urgent_jobs" if urgent_only else "claim_jobs"),
                {
                    **key,
                    "worker_id": worker_id,
                    "limit": limit,
                    "now": now,
                    "lease_expires_at": now + lease_seconds,
                },
            ).fetchall()
            # Only what needs the transaction runs here, in the store's thread: turning
            # rows into jobs happens on the event loop, while this thread goes on.
            if claimed:
                ids = json.dumps([row[0] for row in claimed])  # id is the first column
                started = {"type": str(EventType.JOB_STARTED), "ids": ids, "now": now}
                conn.execute(self._q("insert_started_events"), started)
        return claimed

    async def claim(
        self,
        tenant_id: str,
        queue: str,
        worker_id: str,
        limit: int,
        lease_seconds: float,
        urgent_only: bool = False,
    ) -> list[Job]:
        """Move up to ``limit`` available jobs of a queue to running, in claim order."""
        claimed = await self._run(
            self._claim, tenant_id, queue, worker_id, limit, lease_seconds, urgent_only
        )
        if not claimed:
            return []
        # By name, a sqlite3.Row scans its columns: read each row once into a dict.
        names = claimed[0].keys()
        jobs = (self._job(dict(zip(names, row, strict=True))) for row in claimed)
        return sorted(jobs, key=_claim_order)

    def _heartbeat(
        self, worker_id: str, held: Sequence[tuple[int, int]], lease_seconds: float
    ) -> set[int]:
        with self._write() as conn:
            extended = conn.execute(
                self._q("heartbeat"),
                {
                    "worker_id": worker_id,
                    "held": json.dumps([list(pair) for pair in held]),
                    "lease_expires_at": self._now() + lease_seconds,
                },
            ).fetchall()
        return {r["id"] for r in extended}

    async def heartbeat(
        self, worker_id: str, held: Sequence[tuple[int, int]], lease_seconds: float
    ) -> set[int]:
        """Extend the leases of (job id, attempt) pairs; return the ids still held."""
        if not held:
            return set()
        return await self._run(self._heartbeat, worker_id, held, lease_seconds)

    def _finish(self, finishes: Sequence[Finish], items: str, now: float) -> list[bool]:
        with self._write() as conn:
            done = conn.execute(self._q("finish_job"), {"items": items, "now": now})
            rows_by_id = {row[0]: row for row in done}  # id is the first column returned
            accepted = [item for item in finishes if item.job_id in rows_by_id]
            conn.executemany(
                self._q("insert_attempt"),
                [_attempt_params(rows_by_id[i.job_id], i, now) for i in accepted],
            )
            conn.executemany(
                self._q("insert_event"),
                [_finish_event(rows_by_id[i.job_id], i, now) for i in accepted],
            )
        return [item.job_id in rows_by_id for item in finishes]

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

    async def finish(self, finishes: Sequence[Finish]) -> list[bool]:
        """End attempts; an item whose attempt lost its lease is refused (``False``)."""
        if not finishes:
            return []
        now = self._now()
        return await self._run(self._finish, finishes, _finish_items(finishes, now), now)

    def _rescue_expired(self) -> list[int]:
        now = self._now()
        with self._write() as conn:
            rescued = conn.execute(
                self._q("rescue_expired"), {"now": now, "error": json.dumps(_LOST)}
            ).fetchall()
            for row in rescued:
                self._record_attempt(conn, row, row["attempt"], "lost", _LOST, now)
                kind = (
                    EventType.JOB_DISCARDED
                    if row["state"] == JobState.DISCARDED
                    else EventType.JOB_RESCUED
                )
                data = {
                    "attempt": row["attempt"],
                    "worker_id": row["worker_id"],
                    "reason": "lease expired",
                }
                self._event(conn, row["tenant_id"], row["id"], kind, data, now)
        if rescued:
            self._wakeup.set()
        return [r["id"] for r in rescued]

    async def rescue_expired(self) -> list[int]:
        """Return jobs whose lease expired to available (or discarded); their ids."""
        return await self._run(self._rescue_expired)

    def _promote_due(self, limit: int) -> int:
        now = self._now()
        with self._write() as conn:
            promoted = conn.execute(self._q("promote_due"), {"now": now, "limit": limit}).fetchall()
            for row in promoted:
                data = {"task": row["task"], "queue": row["queue"]}
                self._event(conn, row["tenant_id"], row["id"], EventType.JOB_AVAILABLE, data, now)
        if promoted:
            self._wakeup.set()
        return len(promoted)

    async def promote_due(self, limit: int = 1000) -> int:
        """Make scheduled and retryable jobs whose time has come available."""
        return await self._run(self._promote_due, limit)

    def _next_due_at(self) -> datetime | None:
        value = self.conn.execute(self._q("next_due_at")).fetchone()[0]
        return None if value is None else from_db(value)

    async def next_due_at(self) -> datetime | None:
        """When the earliest waiting job becomes due, if any."""
        return await self._run(self._next_due_at)

    # -- single-job operations -------------------------------------------------

    def _change_state(
        self,
        tenant_id: str,
        job_id: int,
        action: Action,
        to_state: JobState,
        reason: str,
        task_version: int | None = None,
    ) -> Job:
        now = self._now()
        with self._write() as conn:
            job = self._get_job(tenant_id, job_id)
            transition(action, job.state, to_state, job_id)
            retrying = action is Action.RETRY
            max_attempts = max(job.max_attempts, job.attempt + 1) if retrying else job.max_attempts
            row = conn.execute(
                self._q("set_state"),
                {
                    "tenant_id": tenant_id,
                    "id": job_id,
                    "from_state": str(job.state),
                    "to_state": str(to_state),
                    "now": now,
                    "finished_at": now if to_state in TERMINAL else None,
                    "run_at": now if retrying else None,
                    "max_attempts": max_attempts,
                    "result": None if retrying else rows.dump_json(job.result),
                    "error": None
                    if retrying
                    else rows.dump_json(job.error and job.error.to_dict()),
                    "task_version": task_version,
                },
            ).fetchone()
            if job.state is JobState.RUNNING:
                cancelled = {"type": "Cancelled", "message": reason, "traceback": ""}
                self._record_attempt(conn, row, job.attempt, "cancelled", cancelled, now)
            kind = EventType.JOB_RETRIED if retrying else ARRIVAL_EVENT[to_state]
            data = {"from": str(job.state), "reason": reason}
            self._event(conn, tenant_id, job_id, kind, data, now)
        if retrying:
            self._wakeup.set()
        return self._job(row)

    async def cancel_job(self, tenant_id: str, job_id: int, reason: str) -> Job:
        """Cancel a job that has not finished, or raise ``IllegalTransition``."""
        return await self._run(
            self._change_state, tenant_id, job_id, Action.CANCEL, JobState.CANCELLED, reason
        )

    async def retry_job(self, tenant_id: str, job_id: int, task_version: int | None = None) -> Job:
        """Make a finished job available again, keeping its history; with
        ``task_version``, it runs with that version of its task's settings."""
        return await self._run(
            self._change_state,
            tenant_id,
            job_id,
            Action.RETRY,
            JobState.AVAILABLE,
            "retried",
            task_version,
        )

    def _edit_job(self, tenant_id: str, job_id: int, edit: JobEdit) -> Job:
        now = self.clock()
        with self._write() as conn:
            found = conn.execute(self._q("lock_job"), {"tenant_id": tenant_id, "id": job_id})
            job = self._found_job(found.fetchone(), job_id)
            to_state = edit.state_after(job, now)
            if to_state is job.state and not edit.changed_fields(job):
                return job
            params = _edit_params(edit.apply(job), job.state, to_state)
            row = conn.execute(self._q("edit_job"), {**params, "now": now.timestamp()}).fetchone()
            if row is None:  # pragma: no cover - the write lock is held since the read
                raise Conflict(f"job {job_id} changed while it was edited; try again")
            data = edit.event_data(job, to_state)
            self._event(conn, tenant_id, job_id, EventType.JOB_EDITED, data, now.timestamp())
        self._wakeup.set()
        return self._job(row)

    async def edit_job(self, tenant_id: str, job_id: int, edit: JobEdit) -> Job:
        """Apply ``edit`` to a job that has not started, or raise ``NotEditable``."""
        return await self._run(self._edit_job, tenant_id, job_id, edit)

    def _on_running(
        self, query: str, params: dict[str, Any], kind: EventType, data: dict[str, Any]
    ) -> bool:
        now = self._now()
        with self._write() as conn:
            row = conn.execute(self._q(query), {**params, "now": now}).fetchone()
            if row is None:
                return False
            self._event(conn, row["tenant_id"], params["id"], kind, data, now)
        return True

    async def record_progress(
        self, job_id: int, attempt: int, fraction: float, message: str | None
    ) -> bool:
        """Store a running attempt's progress; ``False`` if it lost its lease."""
        params = {"id": job_id, "attempt": attempt, "progress": fraction, "message": message}
        data = {"attempt": attempt, "progress": fraction, "message": message}
        return await self._run(
            self._on_running, "record_progress", params, EventType.JOB_PROGRESS, data
        )

    async def add_note(self, job_id: int, attempt: int, text: str) -> bool:
        """Append a note to a running attempt; ``False`` if it lost its lease."""
        params = {"id": job_id, "attempt": attempt}
        data = {"attempt": attempt, "text": text}
        return await self._run(self._on_running, "touch_running", params, EventType.JOB_NOTE, data)

    def _add_artifact(
        self, job_id: int, attempt: int, name: str, size: int, sha256: str, path: str
    ) -> Artifact:
        now = self._now()
        with self._write() as conn:
            owner = conn.execute(
                self._q("touch_running"), {"id": job_id, "attempt": attempt, "now": now}
            ).fetchone()
            if owner is None:
                raise NotFound(f"job {job_id} attempt {attempt} is not running")
            row = conn.execute(
                self._q("insert_artifact"),
                {
                    "tenant_id": owner["tenant_id"],
                    "job_id": job_id,
                    "name": name,
                    "size": size,
                    "sha256": sha256,
                    "path": path,
                    "now": now,
                },
            ).fetchone()
            data = {"name": name, "size": size, "sha256": sha256}
            self._event(conn, owner["tenant_id"], job_id, EventType.JOB_ARTIFACT, data, now)
        return rows.artifact_from_row(row, from_db)

    async def add_artifact(
        self, job_id: int, attempt: int, name: str, size: int, sha256: str, path: str
    ) -> Artifact:
        """Record a file a running attempt produced."""
        return await self._run(self._add_artifact, job_id, attempt, name, size, sha256, path)

    async def list_artifacts(self, tenant_id: str, job_id: int) -> list[Artifact]:
        """A job's files, oldest first."""
        found = await self._run(
            self._select, "list_artifacts", {"tenant_id": tenant_id, "job_id": job_id}
        )
        return [rows.artifact_from_row(r, from_db) for r in found]

    # -- queues, stats, events, workers ------------------------------------------

    def _set_queue(
        self, query: str, tenant_id: str, name: str, value: dict[str, Any], kind: EventType
    ) -> QueueInfo:
        check_name("queue", name)
        now = self._now()
        with self._write() as conn:
            conn.execute(
                self._q(query), {"tenant_id": tenant_id, "queue": name, "now": now, **value}
            )
            self._event(conn, tenant_id, None, kind, {"queue": name, **value}, now)
        return next(q for q in self._list_queues(tenant_id) if q.name == name)

    async def pause_queue(self, tenant_id: str, name: str, paused: bool) -> QueueInfo:
        """Pause (no new claims) or resume a queue."""
        kind = EventType.QUEUE_PAUSED if paused else EventType.QUEUE_RESUMED
        return await self._run(
            self._set_queue, "pause_queue", tenant_id, name, {"paused": paused}, kind
        )

    async def limit_queue(self, tenant_id: str, name: str, concurrency: int | None) -> QueueInfo:
        """Cap how many of a queue's jobs run at once across all workers."""
        if concurrency is not None and concurrency < 0:
            raise InvalidInput("concurrency", "must be zero or more")
        return await self._run(
            self._set_queue,
            "limit_queue",
            tenant_id,
            name,
            {"concurrency": concurrency},
            EventType.QUEUE_CHANGED,
        )

    def _count_jobs(self, tenant_id: str) -> dict[tuple[str, JobState], int]:
        found = self._select("count_jobs", {"tenant_id": tenant_id})
        return {(r["queue"], JobState(r["state"])): r["n"] for r in found}

    async def count_jobs(self, tenant_id: str) -> dict[tuple[str, JobState], int]:
        """Job counts by (queue, state)."""
        return await self._run(self._count_jobs, tenant_id)

    def _list_queues(self, tenant_id: str) -> list[QueueInfo]:
        settings = {r["name"]: r for r in self._select("queue_rows", {"tenant_id": tenant_id})}
        counts = self._count_jobs(tenant_id)
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

    async def list_queues(self, tenant_id: str) -> list[QueueInfo]:
        """Every queue that has settings or jobs, with counts by state."""
        return await self._run(self._list_queues, tenant_id)

    async def list_events(
        self, tenant_id: str | None, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Committed events after a cursor, in order (SQLite commits in id order)."""
        found = await self._run(
            self._select,
            "list_events",
            {"tenant_id": tenant_id, "after_id": after_id, "limit": limit},
        )
        return [rows.event_from_row(r, from_db) for r in found]

    async def event_horizon(self, after_id: int = 0) -> int:
        """The newest event's id (SQLite commits in id order), or ``after_id``."""
        [row] = await self._run(self._select, "event_horizon", {"after_id": after_id})
        return int(row["id"])

    def _upsert_worker(self, worker: WorkerInfo) -> None:
        with self._write() as conn:
            conn.execute(
                self._q("upsert_worker"),
                {
                    "id": worker.id,
                    "tenant_id": worker.tenant_id,
                    "hostname": worker.hostname,
                    "pid": worker.pid,
                    "queues": json.dumps(list(worker.queues)),
                    "concurrency": worker.concurrency,
                    "started_at": to_db(worker.started_at),
                    "now": self._now(),
                },
            )

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Record (or refresh) a worker's presence."""
        await self._run(self._upsert_worker, worker)

    def _delete_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(self._q("delete_worker"), {"id": worker_id})

    async def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped."""
        await self._run(self._delete_worker, worker_id)

    async def list_workers(self, tenant_id: str) -> list[WorkerInfo]:
        """Workers seen recently."""
        found = await self._run(self._select, "list_workers", {"tenant_id": tenant_id})
        return [rows.worker_from_row(r, from_db) for r in found]

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

    # -- wake-ups -------------------------------------------------------------

    def _changed_elsewhere(self) -> bool:
        version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    async def wait_for_work(self, max_wait: float) -> None:
        """Wake on this process's writes at once, on other processes' within ~5 ms."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while not self._wakeup.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(min(remaining, OTHER_PROCESS_POLL)):
                    await self._wakeup.wait()
            except TimeoutError:
                if await self._run(self._changed_elsewhere):
                    break
        self._wakeup.clear()


def _db_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_db(v) if isinstance(v, datetime) else v for k, v in params.items()}


def _edit_params(edited: Job, from_state: JobState, to_state: JobState) -> dict[str, Any]:
    """``edit_job``'s parameters: ``edited`` holds the new values."""
    values = {name: getattr(edited, name) for name in EDITABLE_FIELDS}
    values["payload"] = rows.dump_json(edited.payload)
    values["tags"] = rows.dump_json(list(edited.tags))
    states = {"from_state": str(from_state), "to_state": str(to_state)}
    return _db_params({**values, **states, "tenant_id": edited.tenant_id, "id": edited.id})


def _error_json(job: Job) -> str | None:
    return rows.dump_json(job.error.to_dict()) if job.error else None


def _claim_order(job: Job) -> tuple[int, datetime, int]:
    return (job.priority, job.run_at, job.id)


def _job_params(job: NewJob, state: JobState) -> dict[str, Any]:
    """One item of ``insert_job``'s JSON batch."""
    return {
        "tenant_id": job.tenant_id,
        "task": job.task,
        "queue": job.queue,
        "state": str(state),
        "priority": job.priority,
        "run_at": job.run_at.timestamp(),
        "payload": job.payload,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "message_id": job.message_id,
        "content_type": job.content_type,
        "content_encoding": job.content_encoding,
        "key": job.key,
        "tags": list(job.tags),
        "assignee": job.assignee,
        "immediate": job.immediate,
        "task_version": job.task_version,
        "created_by": job.created_by,
    }


# A completion with nothing else to record (most of a batch): formatted, not encoded.
# Ids and attempts are ints and times finite floats; the task name is still encoded
# (names are checked, but the event feed of every tenant must never hold bad JSON).
# Absent keys read as NULL.
_COMPLETED_ITEM = '{"id":%d,"attempt":%d,"state":"completed","finished_at":%r}'
_COMPLETED_DATA = '{"attempt":%d,"task":%s}'


def _finish_items(finishes: Sequence[Finish], now: float) -> str:
    """``finish_job``'s JSON batch."""
    items = [
        _COMPLETED_ITEM % (item.job_id, item.attempt, now)
        if item.plain
        else _ENCODER.encode(_finish_item(item, now))
        for item in finishes
    ]
    return "[" + ",".join(items) + "]"


def _finish_item(item: Finish, now: float) -> dict[str, Any]:
    """One item of ``finish_job``'s JSON batch."""
    return {
        "id": item.job_id,
        "attempt": item.attempt,
        "state": str(item.state),
        "run_at": to_db(item.run_at),
        "result": item.result,
        "error": item.error.to_dict() if item.error else None,
        "finished_at": now if item.state in TERMINAL else None,
    }


def _attempt_params(row: sqlite3.Row, item: Finish, now: float) -> dict[str, Any]:
    return {
        "job_id": item.job_id,
        "attempt": item.attempt,
        "tenant_id": row["tenant_id"],
        "worker_id": row["worker_id"] or "",
        "started_at": row["started_at"] if row["started_at"] is not None else now,
        "now": now,
        "outcome": item.outcome,
        "error": rows.dump_json(item.error.to_dict() if item.error else None),
        "task_version": row["task_version"],
    }


def _finish_event(row: sqlite3.Row, item: Finish, now: float) -> dict[str, Any]:
    return {
        "tenant_id": row["tenant_id"],
        "job_id": item.job_id,
        "type": item.event.value,
        "data": _finish_data(row["task"], item),
        "now": now,
    }


def _finish_data(task: str, item: Finish) -> str:
    if item.plain:
        return _COMPLETED_DATA % (item.attempt, _ENCODER.encode(task))
    data: dict[str, Any] = {"attempt": item.attempt, "task": task}
    if item.error:
        data["error"] = {"type": item.error.type, "message": item.error.message}
    if item.run_at is not None:
        data["retry_at"] = item.run_at.isoformat()
    return _ENCODER.encode(data)


def _split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our migrations hold no ';' in literals)."""
    return [s.strip() for s in sql.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(chunk: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in chunk.splitlines())


__all__ = ["SQLiteStore", "from_db", "to_db"]
