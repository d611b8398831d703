"""The SQLite store's queues, stats, events and workers."""

from __future__ import annotations

import json
from typing import Any

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import Event, EventType
from conveyor.domain.jobs import check_name
from conveyor.domain.lifecycle import JobState
from conveyor.store import rows
from conveyor.store.protocol import QueueInfo, WorkerInfo
from conveyor.store.sqlite.base import SQLiteBase, from_db, to_db


class SQLiteQueues(SQLiteBase):
    """Queue settings and counts, the event feed, workers."""

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
        settings = self._select("queue_rows", {"tenant_id": tenant_id})
        return rows.queue_infos(settings, self._count_jobs(tenant_id))

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
