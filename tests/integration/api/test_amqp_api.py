"""``/api/v1/amqp/routes``: owners route their tenant's RabbitMQ queues (``<tenant>.``
names only), a platform admin any queue; members and agents may not; nobody sees
another tenant's routes. No broker is needed: routes are stored data."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Api

pytestmark = pytest.mark.anyio

ROUTES = "/api/v1/amqp/routes"
PROBLEM = "application/problem+json"
ROUTE = {"queue": "acme.crm.changes", "task": "crm.contact.update"}


async def _create(api: Api, who: str = "alice", **fields: Any) -> dict[str, Any]:
    response = await api.call("POST", ROUTES, who, json=ROUTE | fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _member(api: Api) -> dict[str, str]:
    """Mia, a member of acme."""
    tenant_admin = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD, "acme")
    body = {"email": "mia@acme.test", "role": "member", "password": PASSWORD}
    response = await api.client.post("/api/v1/users", json=body, headers=tenant_admin)
    assert response.status_code == 201, response.text
    return await api.login("mia@acme.test")


async def test_an_owner_routes_a_queue_and_reads_its_counters(personas: Api) -> None:
    created = await _create(personas, job_queue="crm", priority=3)
    assert created["queue"] == "acme.crm.changes"
    assert (created["job_queue"], created["priority"], created["enabled"]) == ("crm", 3, True)
    assert created["counts"] == {
        "received": 0,
        "accepted": 0,
        "duplicates": 0,
        "dead_lettered": 0,
        "failed": 0,
        "last_error": "",
        "last_message_at": None,
    }
    listed = (await personas.call("GET", ROUTES, "alice")).json()
    assert [r["id"] for r in listed] == [created["id"]]
    path = f"{ROUTES}/{created['id']}"
    assert (await personas.call("GET", path, "alice")).json() == created


async def test_a_route_says_when_no_bridge_runs(personas: Api) -> None:
    """This server has no ``amqp_url``: the route is stored, but nothing consumes it."""
    created = await _create(personas)
    assert created["bridge_running"] is False
    listed = (await personas.call("GET", ROUTES, "alice")).json()
    assert [r["bridge_running"] for r in listed] == [False]


async def test_no_route_enqueues_shell_jobs(personas: Api) -> None:
    created = await _create(personas)
    path = f"{ROUTES}/{created['id']}"
    response = await personas.call("PATCH", path, "alice", json={"task": "shell"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "task"
    assert (await personas.call("GET", path, "alice")).json()["task"] == ROUTE["task"]


async def test_not_even_a_platform_admin_routes_the_bridges_own_queues(personas: Api) -> None:
    """Every tenant's dead letters land in ``_conveyor.dead-letter``; a tenant named
    ``conveyor`` could otherwise route ``conveyor.dead-letter`` and read them."""
    personas.headers["admin-acme"] = await personas.login(ADMIN_EMAIL, ADMIN_PASSWORD, "acme")
    for queue in ("_conveyor.dead-letter", "conveyor.dead-letter", "conveyor.events"):
        body = ROUTE | {"queue": queue}
        response = await personas.call("POST", ROUTES, "admin-acme", json=body)
        assert response.status_code == 422, (queue, response.text)
        assert "bridge's own" in response.json()["detail"]
    created = await _create(personas, "admin-acme", queue="legacy-crm")
    path = f"{ROUTES}/{created['id']}"
    body = {"queue": "_conveyor.dead-letter"}
    assert (await personas.call("PATCH", path, "admin-acme", json=body)).status_code == 422


async def test_an_owner_may_route_only_queues_named_after_the_tenant(personas: Api) -> None:
    for queue in ("crm.changes", "globex.crm", "acme"):
        response = await personas.call("POST", ROUTES, "alice", json=ROUTE | {"queue": queue})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["field"] == "queue"
        assert "must start with 'acme.'" in problem["detail"]


async def test_a_platform_admin_may_route_any_queue(personas: Api) -> None:
    admin_in_acme = await personas.login(ADMIN_EMAIL, ADMIN_PASSWORD, "acme")
    personas.headers["admin-acme"] = admin_in_acme
    created = await _create(personas, "admin-acme", queue="legacy-crm")
    assert created["queue"] == "legacy-crm"
    listed = (await personas.call("GET", ROUTES, "alice")).json()
    assert [r["queue"] for r in listed] == ["legacy-crm"]


async def test_routes_are_invisible_across_tenants(personas: Api) -> None:
    created = await _create(personas)
    path = f"{ROUTES}/{created['id']}"
    assert (await personas.call("GET", ROUTES, "bob")).json() == []
    for method, body in (("GET", None), ("PATCH", {"enabled": False}), ("DELETE", None)):
        response = await personas.call(method, path, "bob", json=body)
        assert response.status_code == 404, (method, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert (await personas.call("GET", path, "alice")).json()["enabled"] is True


async def test_members_and_agents_may_not_manage_routes(personas: Api) -> None:
    created = await _create(personas)
    personas.headers["mia"] = await _member(personas)
    path = f"{ROUTES}/{created['id']}"
    for who in ("carl", "mia"):
        assert (await personas.call("GET", ROUTES, who)).status_code == 403
        assert (await personas.call("GET", path, who)).status_code == 403
        response = await personas.call("POST", ROUTES, who, json=ROUTE | {"queue": "acme.x"})
        assert response.status_code == 403
        assert (await personas.call("DELETE", path, who)).status_code == 403
    assert (await personas.call("GET", ROUTES)).status_code == 401


async def test_a_queue_is_routed_once(personas: Api) -> None:
    await _create(personas)
    response = await personas.call("POST", ROUTES, "alice", json=ROUTE | {"task": "other"})
    assert response.status_code == 409, response.text
    assert "routed already" in response.json()["detail"]


BAD_ROUTES = [
    (ROUTE | {"priority": 12}, "priority"),
    (ROUTE | {"task": ""}, "task"),
    (ROUTE | {"task": "no spaces allowed"}, "task"),
    (ROUTE | {"task": "shell"}, "task"),
    (ROUTE | {"job_queue": "a/b"}, "job_queue"),
    (ROUTE | {"queue": ""}, "queue"),
    (ROUTE | {"queue": "acme.\tq"}, "queue"),
    (ROUTE | {"arguments": {"x-max-length": 5}}, "arguments"),
    ({"task": "crm.contact.update"}, "queue"),
]


async def test_a_bad_route_is_refused_naming_the_field(personas: Api) -> None:
    for body, field in BAD_ROUTES:
        response = await personas.call("POST", ROUTES, "alice", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert field in response.text, body
    assert (await personas.call("GET", ROUTES, "alice")).json() == []


async def test_a_route_is_changed_paused_and_deleted(personas: Api) -> None:
    created = await _create(personas, priority=2)
    path = f"{ROUTES}/{created['id']}"
    response = await personas.call(
        "PATCH", path, "alice", json={"enabled": False, "priority": None, "task": "crm.v2"}
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["enabled"], changed["priority"], changed["task"]) == (False, None, "crm.v2")
    moved = await personas.call("PATCH", path, "alice", json={"queue": "globex.steal"})
    assert moved.status_code == 422
    assert "must start with 'acme.'" in moved.json()["detail"]
    assert (await personas.call("DELETE", path, "alice")).status_code == 204
    assert (await personas.call("GET", path, "alice")).status_code == 404
