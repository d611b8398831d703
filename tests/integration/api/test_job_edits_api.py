"""PATCH /api/v1/jobs/{id}: editing a job that has not started, and cancelling one that
waits; 409 with the current state once it has started."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.domain.events import EventType
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.anyio


async def _create(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"task": "cnpj.lookup", "queue": "lookups", **fields}
    response = await api.call("POST", "/api/v1/jobs", "alice", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _patch(api: Api, job: dict[str, Any], who: str = "alice", **body: Any) -> Any:
    return await api.call("PATCH", f"/api/v1/jobs/{job['id']}", who, json=body)


async def test_a_scheduled_job_takes_the_fields_sent_and_keeps_the_rest(personas: Api) -> None:
    job = await _create(personas, payload={"cnpj": "1"}, delay=3600, key="k-1", tags=["a"])
    response = await _patch(
        personas, job, payload={"cnpj": "2"}, priority=0, delay=7200, tags=["b"], assignee=None
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert (edited["payload"], edited["priority"], edited["tags"]) == ({"cnpj": "2"}, 0, ["b"])
    assert (edited["key"], edited["queue"], edited["state"]) == ("k-1", "lookups", "scheduled")
    assert edited["run_at"] > job["run_at"]
    detail = (await personas.call("GET", f"/api/v1/jobs/{job['id']}", "alice")).json()
    assert detail["job"] == edited
    [event] = [e for e in detail["events"] if e["type"] == "job.edited"]
    assert event["data"]["fields"] == ["payload", "priority", "run_at", "tags"]


async def test_a_run_at_that_has_come_makes_the_job_available(personas: Api) -> None:
    job = await _create(personas, delay=3600)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await _patch(personas, job, run_at=past)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "available"


async def test_merge_patch_json_is_accepted(personas: Api) -> None:
    job = await _create(personas, delay=3600)
    response = await personas.call(
        "PATCH",
        f"/api/v1/jobs/{job['id']}",
        "alice",
        content=json.dumps({"priority": 2}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["priority"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": 10}, "priority"),
        ({"queue": None}, "queue"),
        ({"queue": "a/b"}, "queue"),
        ({"task": "other"}, "task"),
        ({"message_id": "m-2"}, "message_id"),
        ({"run_at": "2030-01-01T09:00:00"}, "run_at"),
        ({"run_at": "2030-01-01T09:00:00Z", "delay": 5}, "run_at"),
        ({"tags": ["ok", ""]}, "tags"),
        ({"payload": "x\u0000y"}, "payload"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    personas: Api, body: dict[str, Any], field: str
) -> None:
    job = await _create(personas, delay=3600)
    response = await _patch(personas, job, **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    detail = (await personas.call("GET", f"/api/v1/jobs/{job['id']}", "alice")).json()
    assert detail["job"] == job


async def _finish(api: Api, job: dict[str, Any]) -> None:
    [claimed] = await api.server.store.claim("acme", "lookups", "w1", 1, 60.0)
    assert claimed.id == job["id"]
    done = Finish(claimed.id, claimed.attempt, JobState.COMPLETED, EventType.JOB_SUCCEEDED)
    assert await api.server.store.finish([done]) == [True]


async def test_a_job_that_has_started_answers_409_with_its_state(personas: Api) -> None:
    job = await _create(personas, payload={"cnpj": "1"})
    await personas.server.store.claim("acme", "lookups", "w1", 1, 60.0)
    response = await _patch(personas, job, payload={"cnpj": "2"})
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["status"], problem["state"]) == (409, "running")
    assert "only scheduled or available jobs can be edited" in problem["detail"]
    detail = (await personas.call("GET", f"/api/v1/jobs/{job['id']}", "alice")).json()
    assert detail["job"]["payload"] == {"cnpj": "1"}
    assert "job.edited" not in [e["type"] for e in detail["events"]]


async def test_a_finished_job_answers_409_with_its_state(personas: Api) -> None:
    job = await _create(personas)
    await _finish(personas, job)
    response = await _patch(personas, job, priority=1)
    assert (response.status_code, response.json()["state"]) == (409, "completed")


async def test_cancelling_a_scheduled_job_stops_it_and_ends_its_edits(personas: Api) -> None:
    job = await _create(personas, delay=3600)
    cancelled = await personas.call("POST", f"/api/v1/jobs/{job['id']}/cancel", "alice")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    response = await _patch(personas, job, delay=0)
    assert (response.status_code, response.json()["state"]) == (409, "cancelled")
    assert await personas.server.store.claim("acme", "lookups", "w1", 10, 60.0) == []


async def test_only_callers_who_may_write_the_tenants_jobs_can_edit(personas: Api) -> None:
    job = await _create(personas, delay=3600, assignee="carl@acme.test")
    assert (await _patch(personas, job, "bob", priority=0)).status_code == 404
    assert (await _patch(personas, job, "carl", priority=0)).status_code == 403
    missing = await personas.call("PATCH", "/api/v1/jobs/999999", "alice", json={"priority": 1})
    assert missing.status_code == 404
    detail = (await personas.call("GET", f"/api/v1/jobs/{job['id']}", "alice")).json()
    assert detail["job"]["priority"] == job["priority"]
