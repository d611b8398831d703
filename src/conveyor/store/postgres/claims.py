"""Claims, heartbeats and finishes: the hot path of workers, one statement each;
and the rescue of expired leases and the promotion of due jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job
from conveyor.domain.lifecycle import TERMINAL
from conveyor.domain.outcomes import Finish
from conveyor.store import rows
from conveyor.store.postgres.base import Conn, PostgresBase, _json, from_db

_LOST = {"type": "LeaseExpired", "message": "the worker stopped heartbeating", "traceback": ""}


class PostgresClaims(PostgresBase):
    """Claim, heartbeat, finish; rescue expired leases, promote due jobs."""

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


def _claim_order(job: Job) -> tuple[int, datetime, int]:
    return (job.priority, job.run_at, job.id)


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
