"""Incoming hooks through the real app: owners make hooks, senders POST to the secret URL
(no sign-in), requests are stored verbatim and read back, signatures are checked,
redeliveries stored once, tasks enqueued; and who may see what (Alice owns acme, Mia
is a member there, Carl an agent; Bob owns globex)."""

from __future__ import annotations

import base64
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from conveyor.domain.hooks import (
    HookSpec,
    NewReceipt,
    hmac_signature,
    new_receipt_id,
    received_data,
)
from conveyor.loops.hook_pruner import ReceiptPruner
from conveyor.server import Server
from conveyor.services.hooks import HookReceiver
from conveyor.web.app import create_app
from tests.integration.api.conftest import PASSWORD, Api, server_settings
from tests.integration.api.test_live_events import Live, connected, events, live

pytestmark = pytest.mark.anyio

CLIENT_IP = "203.0.113.7"
"""The address the test client connects from (see the ``api`` fixture)."""
BINARY = bytes(range(256)) + b"\x00\xff\xfe backup.zip"


async def _create(api: Api, body: dict[str, Any], who: str = "alice") -> dict[str, Any]:
    response = await api.call("POST", "/api/v1/hooks", who, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _path(created: dict[str, Any]) -> str:
    return "/hooks/" + created["token"]


async def _receipts(api: Api, hook_id: int, who: str = "alice", **query: Any) -> list[Any]:
    response = await api.call("GET", f"/api/v1/hooks/{hook_id}/receipts", who, params=query)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


@pytest.fixture
async def team(personas: Api) -> Api:
    """The personas, and Mia, a member of acme."""
    tenant_admin = await personas.login("admin@example.com", "admin-password-1", "acme")
    body = {"email": "mia@acme.test", "role": "member", "password": PASSWORD}
    response = await personas.client.post("/api/v1/users", json=body, headers=tenant_admin)
    assert response.status_code == 201, response.text
    personas.headers["mia"] = await personas.login("mia@acme.test")
    return personas


async def test_a_hook_is_made_with_its_url_shown_once(team: Api) -> None:
    created = await _create(team, {"name": "backups", "description": "nightly"})
    assert created["url"] == "http://127.0.0.1:8000" + _path(created)
    assert len(created["token"]) >= 40 and created["secret"] is None
    listed = await team.call("GET", "/api/v1/hooks", "mia")
    one = await team.call("GET", f"/api/v1/hooks/{created['id']}", "mia")
    assert [h["name"] for h in listed.json()] == ["backups"]
    for response in (listed, one):
        assert response.status_code == 200
        assert created["token"] not in response.text and "token" not in response.json().__str__()


async def test_a_json_request_is_stored_verbatim_with_ip_and_time(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    body = b'{"database": "crm",   "status": "done"}'
    before = time.time()
    response = await team.client.post(
        _path(created),
        content=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer sender-token",
            "X-Trace": "abc",
        },
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["job_id"] is None and answer["duplicate"] is False
    [listed] = await _receipts(team, created["id"])
    assert listed["id"] == answer["receipt_id"] and listed["ip"] == CLIENT_IP
    received = datetime.fromisoformat(listed["received_at"]).timestamp()
    assert before - 1 <= received <= time.time() + 1
    detail = (
        await team.call("GET", f"/api/v1/hooks/{created['id']}/receipts/{listed['id']}", "mia")
    ).json()
    assert detail["body"] == body.decode() and detail["body_encoding"] == "utf-8"
    assert detail["json_body"] == {"database": "crm", "status": "done"}
    headers = dict(detail["headers"])
    assert headers["x-trace"] == "abc" and headers["authorization"] == "[redacted]"
    assert detail["size"] == len(body) and detail["method"] == "POST"


async def test_a_binary_body_comes_back_byte_for_byte(team: Api) -> None:
    created = await _create(team, {"name": "zips"})
    response = await team.client.put(
        _path(created), content=BINARY, headers={"Content-Type": "application/zip"}
    )
    assert response.status_code == 202, response.text
    receipt_id = response.json()["receipt_id"]
    base = f"/api/v1/hooks/{created['id']}/receipts/{receipt_id}"
    raw = await team.call("GET", base + "/body", "alice")
    assert raw.status_code == 200 and raw.content == BINARY
    assert raw.headers["content-type"] == "application/zip"
    assert raw.headers["content-disposition"].startswith("attachment")
    detail = (await team.call("GET", base, "alice")).json()
    assert detail["body_encoding"] == "base64" and base64.b64decode(detail["body"]) == BINARY
    assert detail["method"] == "PUT" and detail["json_body"] is None


async def test_a_bad_signature_gets_401_and_nothing_is_stored(team: Api) -> None:
    created = await _create(team, {"name": "signed", "verify": "standard-webhooks"})
    secret = created["secret"]
    assert secret.startswith("whsec_")
    body = '{"backup":"done"}'
    now = datetime.now().astimezone()
    good = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_1", now, body),
        "content-type": "application/json",
    }
    bad_headers = [
        good | {"webhook-signature": "v1,AAAA"},
        good | {"webhook-timestamp": "yesterday"},
        {"content-type": "application/json"},
        good | {"webhook-signature": "garbage ,,, %%%"},
    ]
    for headers in bad_headers:
        response = await team.client.post(_path(created), content=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await _receipts(team, created["id"]) == []
    response = await team.client.post(_path(created), content=body, headers=good)
    assert response.status_code == 202, response.text
    [receipt] = await _receipts(team, created["id"])
    assert receipt["verified"] is True and receipt["delivery_id"] == "msg_1"


async def test_a_github_style_signature_is_checked(team: Api) -> None:
    created = await _create(
        team,
        {
            "name": "github",
            "verify": "hmac-sha256",
            "secret": "a-secret-from-github",
            "delivery_header": "X-GitHub-Delivery",
        },
    )
    body = b'{"action":"opened"}'
    headers = {
        "X-Hub-Signature-256": hmac_signature("a-secret-from-github", body),
        "X-GitHub-Delivery": "72d3162e",
        "Content-Type": "application/json",
    }
    response = await team.client.post(_path(created), content=body, headers=headers)
    assert response.status_code == 202, response.text
    wrong = headers | {"X-Hub-Signature-256": hmac_signature("another", body)}
    assert (await team.client.post(_path(created), content=body, headers=wrong)).status_code == 401
    [receipt] = await _receipts(team, created["id"])
    assert receipt["delivery_id"] == "72d3162e"


async def test_a_redelivery_answers_200_with_the_first_receipt(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    first = await team.client.post(_path(created), content=b"one", headers={"webhook-id": "d-1"})
    again = await team.client.post(_path(created), content=b"two", headers={"webhook-id": "d-1"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == first.json() | {"duplicate": True}
    [receipt] = await _receipts(team, created["id"])
    body = await team.call(
        "GET", f"/api/v1/hooks/{created['id']}/receipts/{receipt['id']}/body", "alice"
    )
    assert body.content == b"one"
    assert [r["delivery_id"] for r in await _receipts(team, created["id"], delivery_id="d-1")] == [
        "d-1"
    ]


async def test_a_hook_with_a_task_enqueues_the_body(team: Api) -> None:
    created = await _create(
        team, {"name": "backups", "task": "backup.finished", "queue": "backups", "priority": 1}
    )
    body = b'{"file": "crm.zip", "size": 1024}'
    headers = {"Content-Type": "application/json", "webhook-id": "dlv-9"}
    response = await team.client.post(_path(created), content=body, headers=headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = (await team.call("GET", f"/api/v1/jobs/{job_id}", "alice")).json()["job"]
    assert job["task"] == "backup.finished" and job["queue"] == "backups"
    assert job["priority"] == 1 and job["payload"] == {"file": "crm.zip", "size": 1024}
    assert job["message_id"] == f"hook:{created['id']}:dlv-9"
    assert job["content_type"] == "application/json"
    again = await team.client.post(_path(created), content=body, headers=headers)
    assert again.status_code == 200 and again.json()["job_id"] == job_id
    text = await team.client.post(
        _path(created), content="plain ünïcode".encode(), headers={"Content-Type": "text/plain"}
    )
    text_job = (await team.call("GET", f"/api/v1/jobs/{text.json()['job_id']}", "alice")).json()[
        "job"
    ]
    assert text_job["payload"] == "plain ünïcode" and text_job["content_type"] == "text/plain"
    [listed, _] = await _receipts(team, created["id"])
    assert listed["job_id"] == text_job["id"] and listed["task"] == "backup.finished"


async def test_a_body_its_task_cannot_take_is_refused_and_not_stored(team: Api) -> None:
    created = await _create(team, {"name": "backups", "task": "backup.finished"})
    binary = await team.client.post(
        _path(created), content=b"\xff\xfe", headers={"Content-Type": "application/zip"}
    )
    assert binary.status_code == 415, binary.text
    broken = await team.client.post(
        _path(created), content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["field"] == "body"
    assert await _receipts(team, created["id"]) == []


async def test_each_stored_request_appends_a_hook_received_event(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    response = await team.client.post(_path(created), content=b"x", headers={"webhook-id": "e-1"})
    await team.client.post(_path(created), content=b"x", headers={"webhook-id": "e-1"})
    events = (await team.call("GET", "/api/v1/events", "alice")).json()["items"]
    received = [e for e in events if e["type"] == "hook.received"]
    assert len(received) == 1
    assert received[0]["data"] | {"job_id": None} == {
        "hook_id": created["id"],
        "hook_name": "backups",
        "receipt_id": response.json()["receipt_id"],
        "delivery_id": "e-1",
        "task": None,
        "job_id": None,
        "size": 1,
        "ip": CLIENT_IP,
    }
    carls = (await team.call("GET", "/api/v1/events", "carl")).json()["items"]
    assert [e for e in carls if e["type"] == "hook.received"] == []


async def test_unknown_rotated_and_disabled_tokens_get_404(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    for path in ("/hooks/nope", "/hooks/" + "x" * 500):
        response = await team.client.post(path, content=b"x")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    rotated = await team.call("POST", f"/api/v1/hooks/{created['id']}/rotate-token", "alice")
    assert rotated.status_code == 200 and rotated.json()["token"] != created["token"]
    assert (await team.client.post(_path(created), content=b"x")).status_code == 404
    assert (await team.client.post(_path(rotated.json()), content=b"x")).status_code == 202
    change = await team.call(
        "PATCH", f"/api/v1/hooks/{created['id']}", "alice", json={"enabled": False}
    )
    assert change.status_code == 200 and change.json()["enabled"] is False
    assert (await team.client.post(_path(rotated.json()), content=b"x")).status_code == 404
    assert (await team.client.get(_path(rotated.json()))).status_code == 405


async def test_changing_the_scheme_makes_a_new_secret(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    path = f"/api/v1/hooks/{created['id']}"
    changed = await team.call("PATCH", path, "alice", json={"verify": "hmac-sha256"})
    assert changed.status_code == 200 and len(changed.json()["secret"]) >= 32
    assert changed.json()["token"] is None
    same = await team.call("PATCH", path, "alice", json={"description": "x"})
    assert same.json()["secret"] is None and same.json()["verify"] == "hmac-sha256"
    bad = await team.call("PATCH", path, "alice", json={"delivery_header": "no spaces"})
    assert bad.status_code == 422 and bad.json()["field"] == "delivery_header"
    assert (await team.call("DELETE", path, "alice")).status_code == 204
    assert (await team.call("GET", path, "alice")).status_code == 404


async def test_receipts_page_newest_first(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    ids = []
    for n in range(5):
        response = await team.client.post(_path(created), content=str(n).encode())
        ids.append(response.json()["receipt_id"])
    path = f"/api/v1/hooks/{created['id']}/receipts"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"before": cursor} if cursor else {})
        page = (await team.call("GET", path, "alice", params=params)).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    for cursor in ("zz", "0123abcd"):
        bad = await team.call("GET", path, "alice", params={"before": cursor})
        assert bad.status_code == 422 and bad.json()["field"] == "before"


async def test_members_read_owners_manage_agents_see_nothing(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    hook = f"/api/v1/hooks/{created['id']}"
    assert (await team.call("GET", hook, "mia")).status_code == 200
    assert (await team.call("GET", hook + "/receipts", "mia")).status_code == 200
    for method, path, body in (
        ("POST", "/api/v1/hooks", {"name": "mine"}),
        ("PATCH", hook, {"enabled": False}),
        ("DELETE", hook, None),
        ("POST", hook + "/rotate-token", None),
    ):
        response = await team.call(method, path, "mia", json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert (await team.call(method, path, "carl", json=body)).status_code == 403
    for path in ("/api/v1/hooks", hook, hook + "/receipts"):
        assert (await team.call("GET", path, "carl")).status_code == 403
    assert (await team.call("GET", "/api/v1/hooks")).status_code == 401


async def test_another_tenant_cannot_see_the_hook_or_its_receipts(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    response = await team.client.post(_path(created), content=b"secret backup report")
    receipt = f"/api/v1/hooks/{created['id']}/receipts/{response.json()['receipt_id']}"
    hook = f"/api/v1/hooks/{created['id']}"
    assert (await team.call("GET", "/api/v1/hooks", "bob")).json() == []
    for method, path in (
        ("GET", hook),
        ("GET", hook + "/receipts"),
        ("GET", receipt),
        ("GET", receipt + "/body"),
        ("PATCH", hook),
        ("DELETE", hook),
        ("POST", hook + "/rotate-token"),
    ):
        body = {"enabled": False} if method == "PATCH" else None
        answer = await team.call(method, path, "bob", json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    same_name = await _create(team, {"name": "backups"}, who="bob")
    assert same_name["id"] != created["id"]


async def test_bad_hook_definitions_are_refused_with_the_field(team: Api) -> None:
    for body, field in (
        ({"name": "x", "verify": "md5"}, "verify"),
        ({"name": "x", "task": "shell"}, "task"),
        ({"name": "x", "queue": "q"}, "task"),
        ({"name": "x", "verify": "standard-webhooks", "secret": "not base64!"}, "secret"),
        ({"name": "x", "unknown": 1}, "unknown"),
    ):
        response = await team.call("POST", "/api/v1/hooks", "alice", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    await _create(team, {"name": "dup"})
    assert (
        await team.call("POST", "/api/v1/hooks", "alice", json={"name": "dup"})
    ).status_code == 409


async def test_a_redelivery_enqueues_a_stored_request_whose_job_was_never_made(
    team: Api,
) -> None:
    created = await _create(team, {"name": "backups", "task": "backup.finished"})
    store = team.server.hook_store
    hook = await store.get("acme", created["id"])
    lost = NewReceipt(
        id=new_receipt_id(),
        tenant_id="acme",
        hook_id=hook.id,
        delivery_id="lost-1",
        method="POST",
        content_type="application/json",
        headers=(("content-type", "application/json"), ("webhook-id", "lost-1")),
        body=b'{"stored": true}',
        ip="192.0.2.9",
        received_at=team.server.now(),
        verified=False,
        task="backup.finished",
    )
    await store.record(hook, lost, received_data(hook, lost))
    headers = {"webhook-id": "lost-1", "Content-Type": "application/json"}
    response = await team.client.post(_path(created), content=b'{"resent": 1}', headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["receipt_id"] == lost.id and response.json()["duplicate"] is True
    job = (await team.call("GET", f"/api/v1/jobs/{response.json()['job_id']}", "alice")).json()
    assert job["job"]["payload"] == {"stored": True}
    assert job["job"]["message_id"] == f"hook:{hook.id}:lost-1"


@pytest.fixture
async def behind_proxy(migrated_url: str) -> AsyncIterator[Api]:
    """A server behind a proxy at 10.0.0.0/8 that lets a sender make 3 requests at once."""
    settings = server_settings(
        migrated_url,
        trusted_proxies="10.0.0.0/8",
        rate_limit_per_minute=60,
        rate_limit_burst=3,
        max_body_bytes=2048,
    )
    server = Server(settings)
    await server.start()
    transport = httpx.ASGITransport(app=create_app(server), client=("10.0.0.5", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as client:
            yield Api(client, server)
    finally:
        await server.stop()


async def test_behind_a_trusted_proxy_the_forwarded_sender_is_kept_and_limited(
    behind_proxy: Api,
) -> None:
    admin = await behind_proxy.admin()
    response = await behind_proxy.client.post(
        "/api/v1/hooks", json={"name": f"proxied-{uuid.uuid4().hex}"}, headers=admin
    )
    created = response.json()
    forwarded = {"X-Forwarded-For": "198.51.100.4, 10.0.0.9"}
    for _ in range(3):
        sent = await behind_proxy.client.post(_path(created), content=b"x", headers=forwarded)
        assert sent.status_code == 202, sent.text
    limited = await behind_proxy.client.post(_path(created), content=b"x", headers=forwarded)
    assert limited.status_code == 429 and "retry-after" in limited.headers
    other = {"X-Forwarded-For": "198.51.100.5"}
    too_big = await behind_proxy.client.post(_path(created), content=b"x" * 4096, headers=other)
    assert too_big.status_code == 413
    assert (
        await behind_proxy.client.post(_path(created), content=b"x", headers=other)
    ).status_code == 202
    page = await behind_proxy.client.get(f"/api/v1/hooks/{created['id']}/receipts", headers=admin)
    assert sorted(r["ip"] for r in page.json()["items"]) == ["198.51.100.4"] * 3 + ["198.51.100.5"]


@pytest.mark.usefixtures(live.__name__)
async def test_a_live_client_hears_of_a_request_over_real_http(live: Live) -> None:
    created = await _create(live.api, {"name": "backups"})
    async with live.connect(f"token={live.token('alice')}") as ws:
        assert await connected(ws)
        response = await live.api.client.post(_path(created), content=b"backup done")
        assert response.status_code == 202, response.text
        [event] = await events(ws, 1)
    assert event["event"] == "hook.received" and event["job_id"] is None
    assert event["data"]["receipt_id"] == response.json()["receipt_id"]
    assert event["data"]["ip"] == "127.0.0.1" and event["data"]["size"] == 11


@pytest.mark.usefixtures(live.__name__)
async def test_the_access_log_never_shows_a_hooks_token(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    created = await _create(live.api, {"name": "backups"})

    async def broken(*_: Any) -> Any:
        raise RuntimeError("the receiver broke")

    with caplog.at_level(logging.INFO):
        assert (await live.api.client.post(_path(created), content=b"x")).status_code == 202
        assert (await live.api.client.post("/hooks/wrong-token", content=b"x")).status_code == 404
        assert (await live.api.client.get(_path(created))).status_code == 405
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(HookReceiver, "accept", broken)
            assert (await live.api.client.post(_path(created), content=b"x")).status_code == 500
    served = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("uvicorn"))
    assert served.count("/hooks/redacted") == 4
    ours = [r for r in caplog.records if r.name.startswith(("uvicorn", "conveyor"))]
    logged = "\n".join(r.getMessage() for r in ours)
    assert re.search(r"unexpected error on POST /hooks/(redacted|\{token\})\b", logged)
    assert created["token"] not in logged and "wrong-token" not in logged


async def test_a_shell_task_stored_behind_the_services_back_is_still_refused(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    store = team.server.hook_store
    hook = await store.get("acme", created["id"])
    spec = HookSpec(name="backups", task="shell")
    await store.update("acme", hook.id, spec, "", team.server.now())
    response = await team.client.post(_path(created), content=b"rm -rf /")
    assert response.status_code == 422 and response.json()["field"] == "task"
    assert await _receipts(team, created["id"]) == []


async def test_an_unknown_token_is_refused_before_its_body_is_read(team: Api) -> None:
    pulled = []

    async def body() -> AsyncIterator[bytes]:
        for n in range(8):
            pulled.append(n)
            yield b"x" * 1024

    response = await team.client.post("/hooks/not-a-hook", content=body())
    assert response.status_code == 404
    assert len(pulled) <= 1


async def test_a_lost_enqueue_is_retried_by_the_pruner_with_the_same_message_id(
    team: Api,
) -> None:
    created = await _create(team, {"name": "backups", "task": "backup.finished"})
    store = team.server.hook_store
    hook = await store.get("acme", created["id"])
    now = team.server.now()
    lost = NewReceipt(
        id=new_receipt_id(),
        tenant_id="acme",
        hook_id=hook.id,
        delivery_id=None,
        method="POST",
        content_type="application/json",
        headers=(("content-type", "application/json"),),
        body=b'{"stored": true}',
        ip="192.0.2.9",
        received_at=now - timedelta(minutes=2),
        verified=False,
        task="backup.finished",
    )
    young = replace(lost, id=new_receipt_id(), received_at=now)
    for receipt in (lost, young):
        await store.record(hook, receipt, received_data(hook, receipt))
    pruner = ReceiptPruner(
        store, timedelta(days=30), team.server.now, team.server.receiver.enqueue_lost
    )
    await pruner.run_once()
    await pruner.run_once()
    path = f"/api/v1/hooks/{hook.id}/receipts/"
    retried = (await team.call("GET", path + lost.id, "alice")).json()
    assert retried["job_id"] is not None
    assert (await team.call("GET", path + young.id, "alice")).json()["job_id"] is None
    job = (await team.call("GET", f"/api/v1/jobs/{retried['job_id']}", "alice")).json()["job"]
    assert job["message_id"] == f"hook:{hook.id}:{lost.id}" and job["payload"] == {"stored": True}
    jobs = (await team.call("GET", "/api/v1/jobs", "alice")).json()["items"]
    assert [j["id"] for j in jobs if j["task"] == "backup.finished"] == [retried["job_id"]]


async def test_receipts_are_filtered_by_times_with_an_offset_only(team: Api) -> None:
    created = await _create(team, {"name": "backups"})
    assert (await team.client.post(_path(created), content=b"x")).status_code == 202
    path = f"/api/v1/hooks/{created['id']}/receipts"
    for name in ("since", "until"):
        naive = await team.call("GET", path, "alice", params={name: "2026-01-01T00:00:00"})
        assert naive.status_code == 422 and naive.json()["field"] == name
    aware = await team.call("GET", path, "alice", params={"since": "2026-01-01T00:00:00Z"})
    assert aware.status_code == 200 and len(aware.json()["items"]) == 1


async def test_a_signed_request_is_not_replayed_under_another_delivery_header(
    team: Api,
) -> None:
    created = await _create(
        team, {"name": "signed", "verify": "standard-webhooks", "delivery_header": "x-delivery"}
    )
    body = '{"backup":"done"}'
    now = datetime.now().astimezone()
    signed = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(created["secret"]).sign("msg_1", now, body),
        "x-delivery": "first",
    }
    first = await team.client.post(_path(created), content=body, headers=signed)
    replayed = signed | {"x-delivery": "second"}
    again = await team.client.post(_path(created), content=body, headers=replayed)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["receipt_id"] == first.json()["receipt_id"]
    assert [r["delivery_id"] for r in await _receipts(team, created["id"])] == ["msg_1"]
