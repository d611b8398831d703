"""``POST /api/v1/webhooks/{id}/test``: a signed ``webhook.test`` request sent at once to
a real receiver, which verifies it with the Standard Webhooks package; the guard still
applies, and nothing is recorded."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from conveyor.store.sealing import SecretBox
from tests.integration.api.conftest import Api
from tests.loopback import serving

pytestmark = pytest.mark.anyio


async def _create(personas: Api, url: str) -> dict[str, object]:
    response = await personas.call("POST", "/api/v1/webhooks", "alice", json={"url": url})
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_a_test_request_reaches_the_receiver_signed(personas: Api) -> None:
    received: list[dict[str, object]] = []
    secret: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(Webhook(secret[0]).verify(body, dict(request.headers)))
        return web.Response(status=200, text="thanks")

    personas.server.settings.http_allow = ["127.0.0.1"]
    async with serving(handle) as port:
        created = await _create(personas, f"http://127.0.0.1:{port}/hook")
        secret.append(str(created["secret"]))
        response = await personas.call("POST", f"/api/v1/webhooks/{created['id']}/test", "alice")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["delivered"] is True and result["status_code"] == 200
    assert result["response"] == "thanks" and result["error"] == ""
    [payload] = received
    assert payload["type"] == "webhook.test"
    assert payload["data"] == {"webhook_id": created["id"], "test": True}
    log = await personas.call("GET", f"/api/v1/webhooks/{created['id']}/deliveries", "alice")
    assert log.json()["items"] == []


async def test_a_failing_receiver_is_reported_not_raised(personas: Api) -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=503, text=json.dumps({"down": True}))

    personas.server.settings.http_allow = ["127.0.0.1"]
    async with serving(handle) as port:
        created = await _create(personas, f"http://127.0.0.1:{port}/hook")
        response = await personas.call("POST", f"/api/v1/webhooks/{created['id']}/test", "alice")
    assert response.status_code == 200, response.text
    assert response.json()["delivered"] is False
    assert response.json()["status_code"] == 503


async def test_the_guard_refuses_a_loopback_target_unless_allowed(personas: Api) -> None:
    created = await _create(personas, "http://127.0.0.1:9/hook")
    response = await personas.call("POST", f"/api/v1/webhooks/{created['id']}/test", "alice")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["delivered"] is False and result["status_code"] is None
    assert "127.0.0.1" in result["error"]


async def test_only_owners_send_tests_and_only_to_their_webhooks(personas: Api) -> None:
    created = await _create(personas, "https://example.com/hook")
    path = f"/api/v1/webhooks/{created['id']}/test"
    assert (await personas.call("POST", path, "carl")).status_code == 403
    assert (await personas.call("POST", path, "bob")).status_code == 404
    assert (await personas.call("POST", "/api/v1/webhooks/999999/test", "alice")).status_code == 404


async def test_a_secret_that_does_not_open_is_refused_not_signed_empty(personas: Api) -> None:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=200)

    personas.server.settings.http_allow = ["127.0.0.1"]
    async with serving(handle) as port:
        created = await _create(personas, f"http://127.0.0.1:{port}/hook")
        foreign = SecretBox("another installation's key, long").seal("whsec_b3RoZXI")
        assert "'" not in foreign  # a Fernet token: safe as a literal on both databases
        sql = f"UPDATE webhooks SET secret = '{foreign}' WHERE id = {int(str(created['id']))}"
        await personas.server.store.run_sql([(sql, {})], write=True)
        response = await personas.call("POST", f"/api/v1/webhooks/{created['id']}/test", "alice")
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "rotate it" in response.json()["detail"]
    assert received == []
