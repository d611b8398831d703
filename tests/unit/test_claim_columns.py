"""PostgreSQL's claims return a job's columns in the order of Job's fields: the
worker reads each claimed row by position (rows.job_from_values), which must read
every column into its own field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.jobs import ErrorInfo, Job
from conveyor.domain.lifecycle import JobState
from conveyor.store.queries import load_queries
from conveyor.store.rows import JOB_FIELDS, job_from_values

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["claim_jobs", "claim_urgent_jobs"])
def test_a_claim_returns_the_columns_of_job_in_field_order(name: str) -> None:
    sql = load_queries("postgres")[name]
    returning = re.search(r"RETURNING (.*?)\n\)", sql, re.DOTALL)
    assert returning is not None
    columns = [c.strip().removeprefix("jobs.") for c in returning.group(1).split(",")]
    assert tuple(columns) == JOB_FIELDS


def test_every_column_read_by_position_lands_in_its_own_field() -> None:
    # A different value in every field (times a minute apart), so two columns read
    # into each other's fields cannot go unnoticed.
    job = Job(
        id=7,
        tenant_id="acme",
        task="reports.build",
        queue="reports",
        state=JobState.RUNNING,
        priority=3,
        run_at=START,
        payload={"day": 1},
        attempt=2,
        max_attempts=5,
        timeout=30.0,
        message_id="m-7",
        content_type="application/json",
        content_encoding="utf-8",
        key="k-7",
        tags=("a", "b"),
        assignee="ana",
        immediate=True,
        created_at=START + timedelta(minutes=1),
        updated_at=START + timedelta(minutes=2),
        started_at=START + timedelta(minutes=3),
        finished_at=START + timedelta(minutes=4),
        lease_expires_at=START + timedelta(minutes=5),
        worker_id="w-1",
        result={"rows": 3},
        error=ErrorInfo("KeyError", "'x'", "tb"),
        progress=0.5,
        progress_message="half",
        task_version=4,
        created_by="ana@example.com",
    )
    stored = {
        "state": job.state.value,
        "payload": json.dumps(job.payload),
        "tags": json.dumps(list(job.tags)),
        "result": json.dumps(job.result),
        "error": json.dumps(job.error.to_dict() if job.error else None),
    }
    values = [stored.get(name, getattr(job, name)) for name in JOB_FIELDS]
    assert job_from_values(values, lambda value: value) == job
