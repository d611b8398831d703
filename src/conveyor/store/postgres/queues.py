"""Queues (pause, concurrency limits, counts), the event feed and the workers seen."""

from __future__ import annotations

import json
from typing import Any

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import Event, EventType
from conveyor.domain.jobs import check_name
from conveyor.domain.lifecycle import JobState
from conveyor.store import rows
from conveyor.store.postgres.base import PostgresBase, from_db
from conveyor.store.protocol import QueueInfo, WorkerInfo


class PostgresQueues(PostgresBase):
    """Queue settings and counts, events, workers."""

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
        settings = await self._fetch("queue_rows", {"tenant_id": tenant_id})
        return rows.queue_infos(settings, await self.count_jobs(tenant_id))

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
