"""Creating jobs answers the same for every kind of request: well-formed ones take the
routes' quick path, anything else FastAPI's ordinary one, with the same checks in the
same order (a body that is not JSON before the credentials, the credentials before
the fields)."""

from __future__ import annotations

import pytest

from tests.integration.api.conftest import Api

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
ROUTES = ("/api/v1/jobs", "/api/v1/jobs/batch")


def _one_job(path: str, job: dict[str, object]) -> dict[str, object]:
    return {"jobs": [job]} if path.endswith("/batch") else job


async def _read_only_key(personas: Api) -> dict[str, str]:
    created = await personas.call(
        "POST", "/api/v1/api-keys", "alice", json={"name": "ro", "scopes": ["jobs:read"]}
    )
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["key"]}


async def _write_key(personas: Api) -> dict[str, str]:
    scopes = ["jobs:read", "jobs:write"]
    created = await personas.call(
        "POST", "/api/v1/api-keys", "alice", json={"name": "rw", "scopes": scopes}
    )
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["key"]}


@pytest.mark.parametrize("path", ROUTES)
async def test_a_body_that_is_not_json_is_named_before_the_credentials(api: Api, path: str) -> None:
    headers = {"content-type": "application/json"}
    response = await api.client.post(path, content=b'{"task": ', headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert "JSON decode error" in response.json()["detail"]


@pytest.mark.parametrize("path", ROUTES)
async def test_the_credentials_are_checked_before_the_fields(api: Api, path: str) -> None:
    response = await api.client.post(path, json=_one_job(path, {"task": "t", "priority": 12}))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("path", ROUTES)
async def test_a_well_formed_request_without_credentials_is_refused(api: Api, path: str) -> None:
    response = await api.client.post(path, json=_one_job(path, {"task": "t"}))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("path", ROUTES)
async def test_a_key_that_may_only_read_cannot_create(personas: Api, path: str) -> None:
    headers = await _read_only_key(personas)
    response = await personas.client.post(path, json=_one_job(path, {"task": "t"}), headers=headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert (await personas.client.get("/api/v1/jobs", headers=headers)).json()["items"] == []


@pytest.mark.parametrize("path", ROUTES)
async def test_a_json_body_under_another_media_type_is_refused_as_a_whole(
    personas: Api, path: str
) -> None:
    headers = {"content-type": "text/plain"}
    response = await personas.call("POST", path, "alice", content=b'{"task": "t"}', headers=headers)
    assert response.status_code == 422
    assert response.json()["field"] == "body"


@pytest.mark.parametrize("path", ROUTES)
async def test_json_with_a_charset_or_a_json_suffix_is_accepted(personas: Api, path: str) -> None:
    body = b'{"jobs": [{"task": "t"}]}' if path.endswith("/batch") else b'{"task": "t"}'
    for media_type in ("application/json; charset=utf-8", "application/vnd.acme+json"):
        headers = {"content-type": media_type}
        response = await personas.call("POST", path, "alice", content=body, headers=headers)
        assert response.status_code == 201, response.text


async def test_an_idempotency_key_too_long_is_named(personas: Api) -> None:
    headers = {"Idempotency-Key": "k" * 256}
    response = await personas.call(
        "POST", "/api/v1/jobs", "alice", json={"task": "t"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == "idempotency-key"
    headers = {"Idempotency-Key": "k" * 255}
    response = await personas.call(
        "POST", "/api/v1/jobs", "alice", json={"task": "t"}, headers=headers
    )
    assert response.status_code == 201
    assert response.json()["message_id"] == "k" * 255


async def test_a_message_id_wins_over_the_idempotency_key(personas: Api) -> None:
    headers = {"Idempotency-Key": "from-header"}
    body = {"task": "t", "message_id": "from-body"}
    response = await personas.call("POST", "/api/v1/jobs", "alice", json=body, headers=headers)
    assert response.json()["message_id"] == "from-body"


async def test_an_api_key_creates_jobs_in_its_tenant_only(personas: Api) -> None:
    headers = await _write_key(personas)
    one = await personas.client.post(
        "/api/v1/jobs", json={"task": "t", "tags": ["a"], "timeout": 30}, headers=headers
    )
    assert one.status_code == 201, one.text
    assert one.json()["tags"] == ["a"]
    assert one.json()["timeout"] == 30.0
    many = await personas.client.post(
        "/api/v1/jobs/batch", json={"jobs": [{"task": "u"}, {"task": "v"}]}, headers=headers
    )
    assert many.status_code == 201, many.text
    assert [job["task"] for job in many.json()["items"]] == ["u", "v"]
    listed = await personas.call("GET", "/api/v1/jobs", "alice")
    assert {job["task"] for job in listed.json()["items"]} == {"t", "u", "v"}
    assert (await personas.call("GET", "/api/v1/jobs", "bob")).json()["items"] == []
    entries = (await personas.call("GET", "/api/v1/audit", "alice")).json()["items"]
    actions = [e["action"] for e in entries if e["actor"].startswith("key:")]
    assert actions == ["create_job", "create_jobs"]


async def test_a_batch_with_a_bad_field_names_the_job(personas: Api) -> None:
    jobs = [{"task": "t"}, {"task": "t", "priority": 12}]
    response = await personas.call("POST", "/api/v1/jobs/batch", "alice", json={"jobs": jobs})
    assert response.status_code == 422
    assert response.json()["field"] == "jobs.1.priority"
