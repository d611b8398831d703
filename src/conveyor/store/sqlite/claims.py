"""The SQLite store's hot path: claim, heartbeat, finish; rescue and promote."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job
from conveyor.domain.lifecycle import TERMINAL, JobState
from conveyor.domain.outcomes import Finish
from conveyor.store import rows
from conveyor.store.sqlite.base import SQLiteBase, from_db, to_db

_ENCODER = json.JSONEncoder(separators=(",", ":"))
_LOST = {"type": "LeaseExpired", "message": "the worker stopped heartbeating", "traceback": ""}


class SQLiteClaims(SQLiteBase):
    """Claim jobs, keep their leases, finish their attempts; rescue and promote."""

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


def _claim_order(job: Job) -> tuple[int, datetime, int]:
    return (job.priority, job.run_at, job.id)


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
