"""The SQLite store's enqueue and reads: jobs in (with group commit), jobs, events
and attempts out."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor.domain.events import Event, EventType
from conveyor.domain.jobs import Attempt, Job, JobFilter, NewJob
from conveyor.domain.lifecycle import JobState
from conveyor.store import rows
from conveyor.store.grouping import GroupCommit
from conveyor.store.listing import compile_query, job_list_query
from conveyor.store.sqlite.base import SQLiteBase, from_db


class SQLiteEnqueue(SQLiteBase):
    """Enqueue jobs and read them, their events and attempts."""

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
        keys = [
            {"tenant_id": j.tenant_id, "message_id": j.message_id}
            for j in jobs
            if j.message_id is not None
        ]
        found = conn.execute(self._q("jobs_by_message_ids"), {"keys": json.dumps(keys)})
        first_jobs = {(row["tenant_id"], row["message_id"]): self._job(row) for row in found}
        fresh = iter(ids)
        created = set(ids)
        result: list[Job] = []
        for job, state in zip(jobs, states, strict=True):
            if job.message_id is not None:
                first = first_jobs[job.tenant_id, job.message_id]
                if first.id not in created:  # known before, or a repeat within this batch
                    result.append(first)
                    continue
                created.discard(first.id)
            result.append(job.as_job(next(fresh), state, now))
        return result

    @functools.cached_property
    def _enqueues(self) -> GroupCommit[NewJob, Job]:
        return GroupCommit(self._enqueue_group)

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

    async def get_job(self, tenant_id: str, job_id: int) -> Job:
        """One job, or ``NotFound``."""
        return await self._run(self._get_job, tenant_id, job_id)

    def _list_jobs(self, tenant_id: str, filters: JobFilter) -> list[Job]:
        sql, params = compile_query(self.dialect, job_list_query(self.dialect, tenant_id, filters))
        return [self._job(r) for r in self.conn.execute(sql, params)]

    async def list_jobs(self, tenant_id: str, filters: JobFilter) -> list[Job]:
        """Jobs matching ``filters``."""
        return await self._run(self._list_jobs, tenant_id, filters)

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
