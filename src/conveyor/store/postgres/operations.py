"""Operations on one job: cancel, retry and edit it (compare-and-set, with the event
in the same transaction), and what a running attempt records: progress, notes,
artifacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import DictRow

from conveyor.domain.errors import Conflict, NotFound, StoreUnavailable
from conveyor.domain.events import ARRIVAL_EVENT, EventType
from conveyor.domain.jobs import EDITABLE_FIELDS, Artifact, Job, JobEdit
from conveyor.domain.lifecycle import TERMINAL, Action, JobState, transition
from conveyor.store import rows
from conveyor.store.postgres.base import Conn, PostgresBase, _json, from_db

_CAS_TRIES = 5


class PostgresOperations(PostgresBase):
    """Cancel, retry and edit a job; a running attempt's progress, notes and artifacts."""

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
