"""Errors are problem+json naming the field; bodies are capped; callers are rate-limited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from conveyor.server import Server
from conveyor.web.app import create_app
from tests.integration.api.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, server_settings

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


async def test_invalid_fields_are_named(personas: Api) -> None:
    response = await personas.call(
        "POST", "/api/v1/jobs", "alice", json={"task": "t", "priority": 12}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["field"] == "priority"
    assert body["status"] == 422
    assert "priority" in body["detail"]


async def test_a_bad_job_in_a_batch_rejects_the_batch_and_names_it(personas: Api) -> None:
    jobs = [{"task": "ok"}, {"task": "ok"}, {"task": "bad name!"}]
    response = await personas.call("POST", "/api/v1/jobs/batch", "alice", json={"jobs": jobs})
    assert response.status_code == 422
    assert response.json()["field"] == "jobs[2].task"
    listed = await personas.call("GET", "/api/v1/jobs", "alice")
    assert listed.json()["items"] == []


async def test_unknown_fields_are_refused(personas: Api) -> None:
    response = await personas.call("POST", "/api/v1/jobs", "alice", json={"task": "t", "prio": 1})
    assert response.status_code == 422
    assert response.json()["field"] == "prio"


async def test_illegal_transitions_answer_409_and_missing_jobs_404(personas: Api) -> None:
    job = (await personas.call("POST", "/api/v1/jobs", "alice", json={"task": "t"})).json()
    assert (
        await personas.call("POST", f"/api/v1/jobs/{job['id']}/cancel", "alice")
    ).status_code == 200
    again = await personas.call("POST", f"/api/v1/jobs/{job['id']}/cancel", "alice")
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert (await personas.call("GET", "/api/v1/jobs/999999", "alice")).status_code == 404
    assert (await personas.call("GET", "/api/v1/nothing-here", "alice")).headers[
        "content-type"
    ] == PROBLEM


async def test_idempotency_key_returns_the_first_job(personas: Api) -> None:
    headers = {"Idempotency-Key": "order-7"}
    first = await personas.call(
        "POST", "/api/v1/jobs", "alice", json={"task": "t"}, headers=headers
    )
    second = await personas.call(
        "POST", "/api/v1/jobs", "alice", json={"task": "t"}, headers=headers
    )
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["message_id"] == "order-7"


async def test_anonymous_calls_are_refused(api: Api) -> None:
    response = await api.client.get("/api/v1/jobs")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def _client(migrated_url: str, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    server = Server(server_settings(migrated_url, **overrides))
    await server.start()
    transport = httpx.ASGITransport(app=create_app(server))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://conveyor.test"
        ) as client:
            yield client
    finally:
        await server.stop()


async def test_bodies_above_the_limit_get_413(migrated_url: str) -> None:
    async for client in _client(migrated_url, max_body_bytes=2048):
        big = {"email": "a@b.c", "password": "x" * 5000}
        response = await client.post("/api/v1/auth/login", json=big)
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM


async def test_callers_over_the_rate_limit_get_429_with_retry_after(migrated_url: str) -> None:
    async for client in _client(migrated_url, rate_limit_per_minute=60, rate_limit_burst=3):
        key = {"X-API-Key": "cvk_nothing_here"}
        statuses = [(await client.get("/api/v1/jobs", headers=key)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        limited = await client.get("/api/v1/jobs", headers=key)
        assert limited.headers["retry-after"] == "1"
        # another caller has a bucket of its own
        other = await client.get("/api/v1/jobs", headers={"X-API-Key": "cvk_other_key"})
        assert other.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task": "t", "payload": {"note": "a\u0000b"}}, "payload"),
        ({"task": "t", "key": "k\u0000"}, "key"),
        ({"task": "t", "tags": ["\u0000"]}, "tags"),
    ],
)
async def test_nul_characters_are_refused_by_name_on_both_stores(
    personas: Api, body: dict, field: str
) -> None:
    response = await personas.call("POST", "/api/v1/jobs", "alice", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert (await personas.call("GET", "/api/v1/jobs", "alice")).json()["items"] == []


async def test_a_nul_in_a_list_filter_is_bad_input_not_a_server_error(personas: Api) -> None:
    response = await personas.call("GET", "/api/v1/jobs?key=a%00b", "alice")
    assert response.status_code in (200, 422)  # SQLite can search for it; PostgreSQL cannot
    if response.status_code == 422:
        assert response.headers["content-type"] == PROBLEM


async def test_failed_sign_ins_from_one_address_make_it_wait(migrated_url: str) -> None:
    limits = {"sign_in_failures_per_minute": 60, "sign_in_failures_burst": 3}
    async for client in _client(migrated_url, **limits):
        for n in range(3):  # a new credential header each time does not make a new bucket
            guess = {"email": f"user{n}@example.com", "password": "guess"}
            headers = {"X-API-Key": f"cvk_random_{n}"}
            wrong = await client.post("/api/v1/auth/login", json=guess, headers=headers)
            assert wrong.status_code == 401
        right = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        waiting = await client.post("/api/v1/auth/login", json=right)
        assert waiting.status_code == 429 and int(waiting.headers["retry-after"]) >= 1
        assert "from your address" in waiting.json()["detail"]
        form = await client.get("/login")
        token = form.cookies.get("conveyor_login_csrf") or ""
        data = {"csrf_token": token, "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        page = await client.post("/login", data=data, headers={"Origin": "http://conveyor.test"})
        assert page.status_code == 429 and "from your address" in page.text
        assert page.headers["retry-after"]


async def test_a_correct_password_does_not_use_up_the_address_allowance(
    migrated_url: str,
) -> None:
    limits = {"sign_in_failures_per_minute": 60, "sign_in_failures_burst": 1}
    async for client in _client(migrated_url, **limits):
        right = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        for _ in range(3):
            assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_guesses_sent_all_at_once_are_counted_before_they_are_checked(
    migrated_url: str,
) -> None:
    limits = {"sign_in_failures_per_minute": 1, "sign_in_failures_burst": 3}
    async for client in _client(migrated_url, **limits):
        guess = {"email": ADMIN_EMAIL, "password": "wrong"}
        answers = await asyncio.gather(
            *(client.post("/api/v1/auth/login", json=guess) for _ in range(12))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(401) <= 3 and statuses.count(429) >= 9, statuses
