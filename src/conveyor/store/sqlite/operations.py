"""The SQLite store's single-job operations: cancel, retry, edit; progress, notes
and artifacts of a running attempt."""

from __future__ import annotations

from typing import Any

from conveyor.domain.errors import Conflict, NotFound
from conveyor.domain.events import ARRIVAL_EVENT, EventType
from conveyor.domain.jobs import EDITABLE_FIELDS, Artifact, Job, JobEdit
from conveyor.domain.lifecycle import TERMINAL, Action, JobState, transition
from conveyor.store import rows
from conveyor.store.sqlite.base import SQLiteBase, _db_params, from_db


class SQLiteOperations(SQLiteBase):
    """Change one job at a time, and record what its running attempt reports."""

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


def _edit_params(edited: Job, from_state: JobState, to_state: JobState) -> dict[str, Any]:
    """``edit_job``'s parameters: ``edited`` holds the new values."""
    values = {name: getattr(edited, name) for name in EDITABLE_FIELDS}
    values["payload"] = rows.dump_json(edited.payload)
    values["tags"] = rows.dump_json(list(edited.tags))
    states = {"from_state": str(from_state), "to_state": str(to_state)}
    return _db_params({**values, **states, "tenant_id": edited.tenant_id, "id": edited.id})
