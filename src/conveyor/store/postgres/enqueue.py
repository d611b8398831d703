"""Enqueueing jobs, with concurrent callers' jobs written in one statement (group
commit), and reading them back."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from datetime import datetime

import psycopg
from psycopg.rows import DictRow

from conveyor.domain.errors import Conflict, StoreUnavailable
from conveyor.domain.events import Event, EventType
from conveyor.domain.jobs import Attempt, Job, JobFilter, NewJob
from conveyor.domain.lifecycle import JobState
from conveyor.store import rows
from conveyor.store.grouping import GroupCommit, Uncertain
from conveyor.store.listing import compile_query, job_list_query
from conveyor.store.postgres.base import Conn, PostgresBase, _json, driver_errors, from_db

_DEADLOCK_TRIES = 3
EXTRA_WRITER_AT = 100
"""Jobs waiting to be enqueued before a second transaction writes beside the first:
a batch, or a backlog; single enqueues keep sharing one."""


@contextlib.contextmanager
def _stored() -> Iterator[None]:
    """For what follows a write that has committed: any error, translated, becomes
    ``Uncertain``, so that the write is not made again."""
    try:
        with driver_errors():
            yield
    except Exception as exc:
        raise Uncertain(exc) from exc


class PostgresEnqueue(PostgresBase):
    """Enqueue (group commit) and the reads of jobs, their events and attempts."""

    @functools.cached_property
    def _enqueues(self) -> GroupCommit[NewJob, Job | Conflict]:
        return GroupCommit(self._enqueue_group, writers=2, extra_writer_at=EXTRA_WRITER_AT)

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
        paired = _match_inserted(jobs, inserted)
        skipped = [job for job, row in zip(jobs, paired, strict=True) if row is None]
        known = await self._known(conn, skipped)
        answers: list[Job | Conflict] = []
        for job, state, row in zip(jobs, states, paired, strict=True):
            if row is not None:
                answers.append(job.as_job(row["id"], state, now))
            else:
                first = known.get((job.tenant_id, job.message_id))
                answers.append(
                    first
                    if first is not None
                    else Conflict(f"message {job.message_id!r} is being enqueued")
                )
        return answers

    async def _known(self, conn: Conn, jobs: list[NewJob]) -> dict[tuple[str, str | None], Job]:
        """The first jobs of these jobs' message ids, in one query, by (tenant, message id)."""
        if not jobs:
            return {}
        pairs = {(j.tenant_id, j.message_id) for j in jobs}  # a repeat is asked once
        keys = _json([{"tenant_id": t, "message_id": m} for t, m in pairs])
        found = await self._all(conn, "jobs_by_message_ids", {"keys": keys})
        return {(row["tenant_id"], row["message_id"]): self._job(row) for row in found}

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
