"""Every API route, tried by an outsider (Bob, owner of globex) and by an agent of acme
(Carl) against Alice's acme resources: neither can read nor change them.

The cases are checked against the app's own route table, so a new route without a
case here fails the suite. After each attempt, a snapshot of acme taken as Alice
must be unchanged, and no response may carry acme's markers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.events import EventType
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from conveyor.web.app import create_app
from tests.integration.api.conftest import PASSWORD, Api

pytestmark = pytest.mark.anyio

OWN_EMAIL = {"bob": "bob@globex.test", "carl": "carl@acme.test"}
MARKERS = (
    "s3cr3t-acme-payload",
    "acme-robot",
    "acme-key-77",
    "acme-task-notes-91",
    "acme-schedule-55",
    "acme-webhook-31",
    "acme-hook-41",
    "acme.crm-changes-63",
    "carl@acme.test",
    "alice@acme.test",
)


@dataclass
class Acme:
    """Alice's resources that the attempts aim at."""

    done_job: int
    open_job: int
    carl_job: int
    artifact: int
    queue: str
    carl_id: str
    alice_id: str
    key_id: str
    schedule: int
    webhook: int
    delivery: int
    hook: int
    receipt: str
    mail_rule: int
    amqp_route: int
    task: str = "acme.report"
    """A task acme stores settings for (a change aims at it)."""
    other_task: str = "acme.visit"
    """Another one (a read aims at it, so a change made first cannot answer it)."""


Params = Callable[[Acme], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """How to aim one route at acme: path parameters, and an optional body or query."""

    path: Params
    body: Params | None = None
    query: Params | None = None
    agent_may_read: bool = False
    """An agent of acme may read this (its own tenant's name and status)."""
    own_only: bool = False
    """The route acts only on the caller's own tenant or credentials (no acme id to aim
    at): the check is that acme is unchanged and nothing of it leaks."""


def _none(_: Acme) -> dict[str, Any]:
    return {}


CASES: dict[tuple[str, str], Case] = {
    ("POST", "/api/v1/auth/login"): Case(
        _none, body=lambda a: {"email": "alice@acme.test", "password": "wrong", "tenant": "acme"}
    ),
    ("POST", "/api/v1/auth/token"): Case(_none, own_only=True),
    ("POST", "/api/v1/auth/refresh"): Case(_none, body=lambda a: {"refresh_token": "crt_x.y"}),
    ("POST", "/api/v1/auth/logout"): Case(_none, body=lambda a: {"refresh_token": "crt_x.y"}),
    ("POST", "/api/v1/auth/signup"): Case(
        _none,
        body=lambda a: {"tenant": "acme", "email": "mallory@evil.test", "password": PASSWORD},
    ),
    ("GET", "/api/v1/auth/me"): Case(_none, own_only=True),
    ("POST", "/api/v1/auth/password"): Case(
        _none,
        body=lambda a: {"current_password": PASSWORD, "new_password": PASSWORD + "!"},
        own_only=True,
    ),
    ("POST", "/api/v1/jobs"): Case(
        _none, body=lambda a: {"task": "t", "queue": a.queue}, own_only=True
    ),
    ("POST", "/api/v1/jobs/batch"): Case(
        _none, body=lambda a: {"jobs": [{"task": "t", "queue": a.queue}]}, own_only=True
    ),
    ("GET", "/api/v1/jobs"): Case(_none, query=lambda a: {"queue": a.queue}),
    ("GET", "/api/v1/jobs/{job_id}"): Case(lambda a: {"job_id": a.open_job}),
    ("PATCH", "/api/v1/jobs/{job_id}"): Case(
        lambda a: {"job_id": a.open_job}, body=lambda a: {"queue": "hijack", "delay": 0}
    ),
    ("POST", "/api/v1/jobs/{job_id}/retry"): Case(lambda a: {"job_id": a.done_job}),
    ("POST", "/api/v1/jobs/{job_id}/cancel"): Case(lambda a: {"job_id": a.open_job}),
    ("POST", "/api/v1/jobs/bulk/{action}"): Case(
        lambda a: {"action": "cancel"}, body=lambda a: {"queue": a.queue}
    ),
    ("GET", "/api/v1/jobs/{job_id}/artifacts"): Case(lambda a: {"job_id": a.done_job}),
    ("GET", "/api/v1/jobs/{job_id}/artifacts/{artifact_id}"): Case(
        lambda a: {"job_id": a.done_job, "artifact_id": a.artifact}
    ),
    ("GET", "/api/v1/results"): Case(_none, query=lambda a: {"key": "acme-key-77"}),
    ("GET", "/api/v1/queues"): Case(_none),
    ("POST", "/api/v1/queues/{name}/pause"): Case(lambda a: {"name": a.queue}, own_only=True),
    ("POST", "/api/v1/queues/{name}/resume"): Case(lambda a: {"name": a.queue}, own_only=True),
    ("PUT", "/api/v1/queues/{name}/concurrency"): Case(
        lambda a: {"name": a.queue}, body=lambda a: {"concurrency": 1}, own_only=True
    ),
    ("GET", "/api/v1/tasks"): Case(_none),
    ("GET", "/api/v1/tasks/{name}"): Case(lambda a: {"name": a.other_task}),
    ("PUT", "/api/v1/tasks/{name}"): Case(
        lambda a: {"name": a.task},
        body=lambda a: {"queue": "hijack", "priority": 0, "immediate": True},
        own_only=True,
    ),
    ("POST", "/api/v1/schedules"): Case(
        _none,
        body=lambda a: {"name": "acme-nightly", "cron": "* * * * *", "task": a.task},
        own_only=True,
    ),
    ("POST", "/api/v1/schedules/preview"): Case(
        _none, body=lambda a: {"cron": "0 3 * * *"}, own_only=True
    ),
    ("GET", "/api/v1/schedules"): Case(_none),
    ("GET", "/api/v1/schedules/occurrences"): Case(
        _none,
        query=lambda a: {
            "start": datetime.now(UTC).isoformat(),
            "end": (datetime.now(UTC) + timedelta(days=366)).isoformat(),
        },
    ),
    ("GET", "/api/v1/schedules/{schedule_id}"): Case(lambda a: {"schedule_id": a.schedule}),
    ("PATCH", "/api/v1/schedules/{schedule_id}"): Case(
        lambda a: {"schedule_id": a.schedule},
        body=lambda a: {"enabled": False, "task": "hijack"},
    ),
    ("DELETE", "/api/v1/schedules/{schedule_id}"): Case(lambda a: {"schedule_id": a.schedule}),
    ("POST", "/api/v1/schedules/{schedule_id}/pause"): Case(lambda a: {"schedule_id": a.schedule}),
    ("POST", "/api/v1/schedules/{schedule_id}/resume"): Case(lambda a: {"schedule_id": a.schedule}),
    ("GET", "/api/v1/schedules/{schedule_id}/runs"): Case(lambda a: {"schedule_id": a.schedule}),
    ("POST", "/api/v1/webhooks"): Case(
        _none, body=lambda a: {"url": "https://example.com/steal"}, own_only=True
    ),
    ("GET", "/api/v1/webhooks"): Case(_none),
    ("GET", "/api/v1/webhooks/{webhook_id}"): Case(lambda a: {"webhook_id": a.webhook}),
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): Case(
        lambda a: {"webhook_id": a.webhook},
        body=lambda a: {"url": "https://evil.test/x", "enabled": False},
    ),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): Case(lambda a: {"webhook_id": a.webhook}),
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): Case(
        lambda a: {"webhook_id": a.webhook}
    ),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Case(lambda a: {"webhook_id": a.webhook}),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Case(
        lambda a: {"webhook_id": a.webhook, "delivery_id": a.delivery}
    ),
    ("GET", "/api/v1/workers"): Case(_none),
    ("GET", "/api/v1/events"): Case(_none),
    ("POST", "/api/v1/tenants"): Case(_none, body=lambda a: {"id": "acme", "name": "Hijack"}),
    ("GET", "/api/v1/tenants"): Case(_none),
    ("GET", "/api/v1/tenants/{tenant_id}"): Case(
        lambda a: {"tenant_id": "acme"}, agent_may_read=True
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/suspend"): Case(lambda a: {"tenant_id": "acme"}),
    ("POST", "/api/v1/tenants/{tenant_id}/resume"): Case(lambda a: {"tenant_id": "acme"}),
    ("DELETE", "/api/v1/tenants/{tenant_id}"): Case(lambda a: {"tenant_id": "acme"}),
    ("GET", "/api/v1/tenants/{tenant_id}/usage"): Case(lambda a: {"tenant_id": "acme"}),
    ("GET", "/api/v1/users"): Case(_none),
    ("POST", "/api/v1/users"): Case(
        _none, body=lambda a: {"email": "alice@acme.test", "role": "agent"}, own_only=True
    ),
    ("PATCH", "/api/v1/users/{user_id}"): Case(
        lambda a: {"user_id": a.carl_id}, body=lambda a: {"role": "owner"}
    ),
    ("DELETE", "/api/v1/users/{user_id}"): Case(lambda a: {"user_id": a.alice_id}),
    ("POST", "/api/v1/api-keys"): Case(
        _none, body=lambda a: {"name": "k", "scopes": ["jobs:read"]}, own_only=True
    ),
    ("GET", "/api/v1/api-keys"): Case(_none),
    ("DELETE", "/api/v1/api-keys/{key_id}"): Case(lambda a: {"key_id": a.key_id}),
    ("GET", "/api/v1/audit"): Case(_none),
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): Case(lambda a: {"webhook_id": a.webhook}),
    ("POST", "/api/v1/mail/rules"): Case(
        _none,
        body=lambda a: {
            "scope": f"job:{a.done_job}",
            "on": ["succeeded"],
            "to": ["evil@evil.test"],
        },
    ),
    ("GET", "/api/v1/mail/rules"): Case(_none),
    ("GET", "/api/v1/mail/rules/{rule_id}"): Case(lambda a: {"rule_id": a.mail_rule}),
    ("DELETE", "/api/v1/mail/rules/{rule_id}"): Case(lambda a: {"rule_id": a.mail_rule}),
    ("GET", "/api/v1/mail/outbox"): Case(_none),
    ("GET", "/api/v1/me/mail"): Case(_none, own_only=True),
    ("PATCH", "/api/v1/me/mail"): Case(
        _none, body=lambda a: {"summary_enabled": False}, own_only=True
    ),
    ("POST", "/api/v1/amqp/routes"): Case(
        _none, body=lambda a: {"queue": "acme.crm-changes-63", "task": "evil"}
    ),
    ("GET", "/api/v1/amqp/routes"): Case(_none),
    ("GET", "/api/v1/amqp/routes/{route_id}"): Case(lambda a: {"route_id": a.amqp_route}),
    ("PATCH", "/api/v1/amqp/routes/{route_id}"): Case(
        lambda a: {"route_id": a.amqp_route}, body=lambda a: {"enabled": False}
    ),
    ("DELETE", "/api/v1/amqp/routes/{route_id}"): Case(lambda a: {"route_id": a.amqp_route}),
    ("POST", "/api/v1/hooks"): Case(_none, body=lambda a: {"name": "h"}, own_only=True),
    ("GET", "/api/v1/hooks"): Case(_none),
    ("GET", "/api/v1/hooks/{hook_id}"): Case(lambda a: {"hook_id": a.hook}),
    ("PATCH", "/api/v1/hooks/{hook_id}"): Case(
        lambda a: {"hook_id": a.hook}, body=lambda a: {"enabled": False}
    ),
    ("DELETE", "/api/v1/hooks/{hook_id}"): Case(lambda a: {"hook_id": a.hook}),
    ("POST", "/api/v1/hooks/{hook_id}/rotate-token"): Case(lambda a: {"hook_id": a.hook}),
    ("GET", "/api/v1/hooks/{hook_id}/receipts"): Case(lambda a: {"hook_id": a.hook}),
    ("GET", "/api/v1/hooks/{hook_id}/receipts/{receipt_id}"): Case(
        lambda a: {"hook_id": a.hook, "receipt_id": a.receipt}
    ),
    ("GET", "/api/v1/hooks/{hook_id}/receipts/{receipt_id}/body"): Case(
        lambda a: {"hook_id": a.hook, "receipt_id": a.receipt}
    ),
}


def api_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app serves under /api/v1 (every route is in the schema)."""
    from conveyor.server import Server
    from tests.integration.api.conftest import server_settings

    app = create_app(Server(server_settings("sqlite:///unused.db")))
    found = set()
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/v1/"):
            found.update((method.upper(), path) for method in operations)
    return found


def test_every_route_has_a_case() -> None:
    routes = api_routes()
    missing = sorted(routes - set(CASES))
    assert not missing, f"routes without an isolation case: {missing}"
    stale = sorted(set(CASES) - routes)
    assert not stale, f"cases for routes that no longer exist: {stale}"


async def _acme(api: Api, tmp_path: Path) -> Acme:
    """Alice's task settings, jobs (one finished with an artifact), queue, users and key."""
    alice = api.headers["alice"]
    queue = "acme-queue"
    hook = {"url": "http://127.0.0.1:9/acme-webhook-31", "description": "acme-webhook-31"}
    webhook = await api.client.post("/api/v1/webhooks", json=hook, headers=alice)
    assert webhook.status_code == 201, webhook.text
    for task in ("acme.report", "acme.visit"):
        body = {"queue": queue, "description": "acme-task-notes-91"}
        response = await api.client.put(f"/api/v1/tasks/{task}", json=body, headers=alice)
        assert response.status_code == 200, response.text
    payload = {"marker": "s3cr3t-acme-payload"}
    jobs = [
        {"task": "acme.report", "queue": queue, "payload": payload, "key": "acme-key-77"},
        {"task": "acme.report", "queue": queue, "payload": payload, "delay": 3600},
        {"task": "acme.visit", "queue": queue, "payload": {}, "assignee": "carl@acme.test"},
    ]
    response = await api.client.post("/api/v1/jobs/batch", json={"jobs": jobs}, headers=alice)
    assert response.status_code == 201, response.text
    done, open_job, carl_job = (j["id"] for j in response.json()["items"])
    artifact = await _finish_with_artifact(api, tmp_path, queue)
    users = (await api.client.get("/api/v1/users", headers=alice)).json()
    ids = {u["email"]: u["id"] for u in users}
    key = await api.client.post(
        "/api/v1/api-keys", json={"name": "acme-robot", "scopes": ["jobs:read"]}, headers=alice
    )
    schedule = {
        "name": "acme-schedule-55",
        "cron": "0 3 1 1 *",
        "task": "acme.report",
        "payload": payload,
    }
    response = await api.client.post("/api/v1/schedules", json=schedule, headers=alice)
    assert response.status_code == 201, response.text
    return Acme(
        done_job=done,
        open_job=open_job,
        carl_job=carl_job,
        artifact=artifact,
        queue=queue,
        carl_id=ids["carl@acme.test"],
        alice_id=ids["alice@acme.test"],
        key_id=key.json()["api_key"]["id"],
        schedule=response.json()["id"],
        webhook=webhook.json()["id"],
        delivery=await _delivery(api, webhook.json()["id"]),
        **await _incoming_hook(api),
        mail_rule=await _mail_rule(api),
        amqp_route=await _amqp_route(api),
    )


async def _amqp_route(api: Api) -> int:
    """Acme's RabbitMQ route (no broker is configured: it is only stored)."""
    route = {"queue": "acme.crm-changes-63", "task": "acme.report"}
    response = await api.client.post(
        "/api/v1/amqp/routes", json=route, headers=api.headers["alice"]
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _mail_rule(api: Api) -> int:
    """Acme's rule: mail the owner when an acme.report job fails."""
    rule = {"scope": "task:acme.report", "on": ["failed"], "to": ["owner"]}
    response = await api.client.post("/api/v1/mail/rules", json=rule, headers=api.headers["alice"])
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _incoming_hook(api: Api) -> dict[str, Any]:
    """Acme's incoming hook and one request it received."""
    body = {"name": "acme-hook-41", "description": "acme-hook-41"}
    hook = await api.client.post("/api/v1/hooks", json=body, headers=api.headers["alice"])
    assert hook.status_code == 201, hook.text
    sent = await api.client.post("/hooks/" + hook.json()["token"], content=b"acme-hook-41 body")
    assert sent.status_code == 202, sent.text
    return {"hook": hook.json()["id"], "receipt": sent.json()["receipt_id"]}


async def _delivery(api: Api, webhook_id: int) -> int:
    """A delivery of acme's webhook (its address is refused: nothing is dialled)."""
    notifier = api.server.notifier
    assert notifier is not None
    await notifier.run_once()
    await notifier.drain()
    path = f"/api/v1/webhooks/{webhook_id}/deliveries"
    page = await api.client.get(path, headers=api.headers["alice"])
    assert page.status_code == 200, page.text
    delivery_id: int = page.json()["items"][0]["id"]
    return delivery_id


async def _finish_with_artifact(api: Api, tmp_path: Path, queue: str) -> int:
    store = api.server.store
    [job] = await store.claim("acme", queue, "test-worker", 1, 60.0)
    data = b"acme backup"
    path = tmp_path / "backup.zip"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    artifact = await store.add_artifact(
        job.id, job.attempt, "backup.zip", len(data), digest, str(path)
    )
    finish = Finish(
        job.id, job.attempt, JobState.COMPLETED, EventType.JOB_SUCCEEDED, result={"ok": 1}
    )
    assert await store.finish([finish]) == [True]
    return artifact.id


async def _snapshot(api: Api) -> dict[str, Any]:
    """Acme as Alice sees it, minus what changes by itself (timestamps of use)."""
    alice = api.headers["alice"]

    async def get(path: str) -> Any:
        response = await api.client.get(path, headers=alice)
        assert response.status_code == 200, f"{path}: {response.text}"
        return response.json()

    jobs = await get("/api/v1/jobs?limit=100")
    keys = await get("/api/v1/api-keys")
    tasks = await get("/api/v1/tasks")
    schedules = await get("/api/v1/schedules")
    webhooks = await get("/api/v1/webhooks")
    hooks = await get("/api/v1/hooks")
    rules = await get("/api/v1/mail/rules")
    routes = await get("/api/v1/amqp/routes")
    return {
        "amqp_routes": [(r["id"], r["queue"], r["task"], r["enabled"]) for r in routes],
        "mail_rules": [(r["id"], r["scope"], r["to"]) for r in rules],
        "webhooks": [(w["id"], w["url"], w["enabled"], w["updated_at"]) for w in webhooks],
        "hooks": [(h["id"], h["name"], h["enabled"], h["updated_at"]) for h in hooks],
        "schedules": [(s["id"], s["task"], s["enabled"], s["revision"]) for s in schedules],
        "tasks": [(t["name"], t["version"], t["queue"], t["priority"]) for t in tasks],
        "jobs": [(j["id"], j["state"], j["queue"]) for j in jobs["items"]],
        "queues": [(q["name"], q["paused"], q["concurrency"]) for q in await get("/api/v1/queues")],
        "users": sorted((u["email"], u["role"]) for u in await get("/api/v1/users")),
        "keys": [(k["id"], k["revoked_at"]) for k in keys],
        "tenant": (await get("/api/v1/tenants/acme"))["status"],
    }


def _url(path: str, params: dict[str, Any]) -> str:
    return path.format(**params)


async def _attempt(api: Api, who: str, key: tuple[str, str], acme: Acme) -> None:
    method, path = key
    case = CASES[key]
    url = _url(path, case.path(acme))
    kwargs: dict[str, Any] = {}
    if case.body is not None:
        kwargs["json"] = case.body(acme)
    if case.query is not None:
        kwargs["params"] = case.query(acme)
    if key == ("POST", "/api/v1/auth/token"):
        kwargs["data"] = {"username": "alice@acme.test", "password": "wrong"}
    before = await _snapshot(api)
    response = await api.call(method, url, who, **kwargs)
    assert response.status_code < 500, f"{who} {method} {url}: {response.text}"
    text = response.text.lower()
    leaked = [m for m in MARKERS if m in text and m != OWN_EMAIL[who]]
    assert not leaked, f"{who} {method} {url} leaked {leaked}: {response.text[:300]}"
    allowed = who == "carl" and case.agent_may_read
    if not case.own_only and not allowed and _aims_at_resource(path):
        assert response.status_code in (401, 403, 404), (
            f"{who} {method} {url}: {response.status_code}"
        )
    assert await _snapshot(api) == before, f"{who} {method} {url} changed acme"


def _aims_at_resource(path: str) -> bool:
    return "{" in path and "{action}" not in path


@pytest.mark.parametrize("who", ["bob", "carl"])
async def test_nobody_reads_or_changes_another_tenants_resources(
    personas: Api, tmp_path: Path, who: str
) -> None:
    acme = await _acme(personas, tmp_path)
    for key in sorted(CASES):
        email = OWN_EMAIL[who]
        personas.headers[who] = await personas.login(email)
        await _attempt(personas, who, key, acme)
        if key == ("POST", "/api/v1/auth/password"):  # put the password back
            headers = await personas.login(email, PASSWORD + "!")
            body = {"current_password": PASSWORD + "!", "new_password": PASSWORD}
            reset = await personas.client.post("/api/v1/auth/password", json=body, headers=headers)
            assert reset.status_code == 204


async def test_an_agent_sees_only_its_assigned_jobs(personas: Api, tmp_path: Path) -> None:
    acme = await _acme(personas, tmp_path)
    listed = await personas.call("GET", "/api/v1/jobs", "carl")
    assert [j["id"] for j in listed.json()["items"]] == [acme.carl_job]
    mine = await personas.call("GET", f"/api/v1/jobs/{acme.carl_job}", "carl")
    assert mine.status_code == 200
    events = await personas.call("GET", "/api/v1/events", "carl")
    assert {e["job_id"] for e in events.json()["items"]} == {acme.carl_job}
