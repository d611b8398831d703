"""The API answers, signs people in and runs the basic job flow."""

from __future__ import annotations

import pytest

from tests.integration.api.conftest import Api

pytestmark = pytest.mark.anyio


async def test_health_and_openapi(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    spec = (await api.client.get("/api/openapi.json")).json()
    assert "/api/v1/jobs" in spec["paths"]
    assert (await api.client.get("/api/docs")).status_code == 200


async def test_openapi_documents_every_error_as_a_problem(api: Api) -> None:
    spec = (await api.client.get("/api/openapi.json")).json()
    assert spec["components"]["schemas"]["ProblemOut"]["required"] == ["title", "status", "detail"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    errors = [
        (path, code, answer)
        for path, operations in spec["paths"].items()
        for operation in operations.values()
        for code, answer in operation["responses"].items()
        if code.startswith(("4", "5"))
    ]
    assert {code for path, code, _ in errors if path == "/api/v1/jobs"} >= {"401", "404", "422"}
    for path, code, answer in errors:
        assert answer["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
        }, (path, code)


async def test_owner_creates_and_lists_a_job(personas: Api) -> None:
    created = await personas.call(
        "POST", "/api/v1/jobs", "alice", json={"task": "reports.build", "payload": {"n": 1}}
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["state"] == "available"
    assert job["payload"] == {"n": 1}
    listed = await personas.call("GET", "/api/v1/jobs", "alice")
    assert [j["id"] for j in listed.json()["items"]] == [job["id"]]
    assert (await personas.call("GET", "/api/v1/jobs", "bob")).json()["items"] == []
    other = await personas.call("GET", f"/api/v1/jobs/{job['id']}", "bob")
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"
