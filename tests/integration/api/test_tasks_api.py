"""The task endpoints: versioned settings per tenant, the defaults jobs take from them,
and the version each job, attempt and reprocess records.

The job API does not show ``task_version`` yet, so what a job or an attempt recorded is
read from the server's store.
"""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.domain.events import EventType
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from tests.integration.api.conftest import PASSWORD, Api

pytestmark = pytest.mark.anyio

TASK = "reports.build"


async def _change(api: Api, body: dict[str, Any], who: str = "alice", task: str = TASK) -> Any:
    response = await api.call("PUT", f"/api/v1/tasks/{task}", who, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def _enqueue(api: Api, body: dict[str, Any]) -> Any:
    response = await api.call("POST", "/api/v1/jobs", "alice", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _run(api: Api, queue: str) -> int:
    """Claim the next job of an acme queue and complete it; its id."""
    store = api.server.store
    [job] = await store.claim("acme", queue, "w", 1, 60.0)
    finish = Finish(job.id, job.attempt, JobState.COMPLETED, EventType.JOB_SUCCEEDED)
    assert await store.finish([finish]) == [True]
    return job.id


async def _member(api: Api) -> None:
    """Mia, a member of acme."""
    body = {"email": "mia@acme.test", "role": "member", "password": PASSWORD}
    response = await api.call("POST", "/api/v1/users", "alice", json=body)
    assert response.status_code == 201, response.text
    api.headers["mia"] = await api.login("mia@acme.test")


async def test_each_change_makes_a_new_version_and_keeps_what_it_does_not_set(
    personas: Api,
) -> None:
    first = await _change(personas, {"queue": "reports", "priority": 1, "description": "v1"})
    assert first == {
        "name": TASK,
        "version": 1,
        "queue": "reports",
        "priority": 1,
        "max_attempts": 3,
        "timeout": None,
        "immediate": False,
        "description": "v1",
        "created_at": first["created_at"],
        "created_by": "user:alice@acme.test",
    }
    second = await _change(personas, {"priority": 2, "timeout": 30})
    assert (second["version"], second["queue"], second["priority"], second["timeout"]) == (
        2,
        "reports",
        2,
        30.0,
    )
    third = await _change(personas, {"timeout": None})
    assert (third["version"], third["timeout"]) == (3, None)
    history = await personas.call("GET", f"/api/v1/tasks/{TASK}", "alice")
    assert [v["version"] for v in history.json()] == [3, 2, 1]
    listed = await personas.call("GET", "/api/v1/tasks", "alice")
    assert listed.json() == [third]
    audit = await personas.call("GET", "/api/v1/audit", "alice")
    changes = [e for e in audit.json()["items"] if e["action"] == "change_task"]
    assert [e["target"] for e in changes] == [f"/api/v1/tasks/{TASK}"] * 3


async def test_a_change_that_changes_nothing_makes_no_version(personas: Api) -> None:
    first = await _change(personas, {"queue": "reports"})
    assert await _change(personas, {"queue": "reports"}) == first
    assert await _change(personas, {}) == first


async def test_a_task_without_stored_settings_is_not_found(personas: Api) -> None:
    response = await personas.call("GET", "/api/v1/tasks/never.changed", "alice")
    assert response.status_code == 404
    assert (await personas.call("GET", "/api/v1/tasks", "alice")).json() == []


async def test_a_job_enqueued_without_options_takes_the_current_version(
    personas: Api,
) -> None:
    await _change(personas, {"queue": "slow", "priority": 6})
    await _change(personas, {"queue": "fast", "priority": 0, "immediate": True, "timeout": 9})
    job = await _enqueue(personas, {"task": TASK})
    assert (job["queue"], job["priority"], job["immediate"], job["timeout"]) == (
        "fast",
        0,
        True,
        9.0,
    )
    stored = await personas.server.store.get_job("acme", job["id"])
    assert stored.task_version == 2


async def test_options_given_at_enqueue_still_win(personas: Api) -> None:
    await _change(personas, {"queue": "fast", "priority": 0, "immediate": True})
    job = await _enqueue(
        personas, {"task": TASK, "queue": "slow", "priority": 7, "immediate": False}
    )
    assert (job["queue"], job["priority"], job["immediate"]) == ("slow", 7, False)
    stored = await personas.server.store.get_job("acme", job["id"])
    assert stored.task_version == 1


async def test_a_batch_takes_each_tasks_version_and_other_tasks_keep_the_defaults(
    personas: Api,
) -> None:
    await _change(personas, {"queue": "fast", "priority": 1})
    body = {"jobs": [{"task": TASK}, {"task": "other.task"}, {"task": TASK, "priority": 4}]}
    response = await personas.call("POST", "/api/v1/jobs/batch", "alice", json=body)
    assert response.status_code == 201, response.text
    jobs = response.json()["items"]
    assert [(j["queue"], j["priority"]) for j in jobs] == [
        ("fast", 1),
        ("default", 5),
        ("fast", 4),
    ]
    store = personas.server.store
    versions = [(await store.get_job("acme", j["id"])).task_version for j in jobs]
    assert versions == [1, None, 1]


async def test_an_attempt_records_the_version_that_ran_it_and_a_reprocess_runs_the_current(
    personas: Api,
) -> None:
    await _change(personas, {"queue": "reports"})
    job = await _enqueue(personas, {"task": TASK})
    assert await _run(personas, "reports") == job["id"]
    await _change(personas, {"priority": 1})
    retried = await personas.call("POST", f"/api/v1/jobs/{job['id']}/retry", "alice")
    assert retried.status_code == 200, retried.text
    store = personas.server.store
    assert (await store.get_job("acme", job["id"])).task_version == 2
    assert await _run(personas, "reports") == job["id"]
    detail = await personas.call("GET", f"/api/v1/jobs/{job['id']}", "alice")
    assert [a["outcome"] for a in detail.json()["attempts"]] == ["completed", "completed"]
    attempts = await store.list_attempts("acme", job["id"])
    assert [(a.attempt, a.task_version) for a in attempts] == [(1, 1), (2, 2)]


async def test_a_reprocess_of_a_task_without_versions_records_none(personas: Api) -> None:
    job = await _enqueue(personas, {"task": "plain.task"})
    await _run(personas, "default")
    retried = await personas.call("POST", f"/api/v1/jobs/{job['id']}/retry", "alice")
    assert retried.status_code == 200, retried.text
    assert (await personas.server.store.get_job("acme", job["id"])).task_version is None


async def test_members_read_task_settings_but_only_owners_change_them(personas: Api) -> None:
    await _member(personas)
    await _change(personas, {"queue": "reports"})
    for path in ("/api/v1/tasks", f"/api/v1/tasks/{TASK}"):
        assert (await personas.call("GET", path, "mia")).status_code == 200
    refused = await personas.call("PUT", f"/api/v1/tasks/{TASK}", "mia", json={"priority": 0})
    assert refused.status_code == 403, refused.text
    history = await personas.call("GET", f"/api/v1/tasks/{TASK}", "alice")
    assert [v["version"] for v in history.json()] == [1]


async def test_anonymous_callers_are_asked_to_sign_in(personas: Api) -> None:
    for method, path in (
        ("GET", "/api/v1/tasks"),
        ("GET", f"/api/v1/tasks/{TASK}"),
        ("PUT", f"/api/v1/tasks/{TASK}"),
    ):
        response = await personas.call(method, path, json={"priority": 1})
        assert response.status_code == 401, (method, path, response.text)


async def test_agents_neither_read_nor_change_task_settings(personas: Api) -> None:
    await _change(personas, {"queue": "reports"})
    for method, path in (("GET", "/api/v1/tasks"), ("GET", f"/api/v1/tasks/{TASK}")):
        assert (await personas.call(method, path, "carl")).status_code == 403
    refused = await personas.call("PUT", f"/api/v1/tasks/{TASK}", "carl", json={"priority": 0})
    assert refused.status_code == 403


async def test_an_admin_key_may_change_settings_and_is_named_as_the_author(
    personas: Api,
) -> None:
    body = {"name": "deployer", "scopes": ["admin"]}
    made = await personas.call("POST", "/api/v1/api-keys", "alice", json=body)
    assert made.status_code == 201, made.text
    key = made.json()
    response = await personas.client.put(
        f"/api/v1/tasks/{TASK}", json={"priority": 2}, headers={"X-API-Key": key["key"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["created_by"] == f"key:{key['api_key']['id']}"


async def test_a_change_acts_on_the_callers_own_tenant_only(personas: Api) -> None:
    mine = await _change(personas, {"queue": "acme-q", "priority": 3})
    theirs = await _change(personas, {"queue": "hijack", "priority": 0}, who="bob")
    assert (theirs["version"], theirs["created_by"]) == (1, "user:bob@globex.test")
    history = await personas.call("GET", f"/api/v1/tasks/{TASK}", "alice")
    assert history.json() == [mine]
    job = await _enqueue(personas, {"task": TASK})
    assert (job["queue"], job["priority"]) == ("acme-q", 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": 12}, "priority"),
        ({"priority": -1}, "priority"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": 0}, "timeout"),
        ({"immediate": "maybe"}, "immediate"),
        ({"queue": "no spaces"}, "queue"),
        ({"queue": None}, "queue"),
        ({"priority": None}, "priority"),
        ({"description": "x" * 1001}, "description"),
        ({"description": "nul \u0000 inside"}, "description"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_settings_are_refused_naming_the_field(
    personas: Api, body: dict[str, Any], field: str
) -> None:
    response = await personas.call("PUT", f"/api/v1/tasks/{TASK}", "alice", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert (await personas.call("GET", "/api/v1/tasks", "alice")).json() == []


async def test_a_bad_task_name_is_refused_naming_it(personas: Api) -> None:
    response = await personas.call("PUT", "/api/v1/tasks/-bad", "alice", json={})
    assert response.status_code == 422
    assert response.json()["field"] == "name"
