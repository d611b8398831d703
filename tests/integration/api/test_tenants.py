"""Tenants at runtime: created and used at once, suspended, resumed, deleted; usage;
the audit log of changes."""

from __future__ import annotations

import httpx
import pytest

from conveyor.server import Server
from conveyor.store import accounts_for, store_from_url
from conveyor.web.app import create_app
from tests.integration.api.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Api, server_settings

pytestmark = pytest.mark.anyio


async def test_a_suspended_tenant_is_refused_and_its_jobs_wait(personas: Api) -> None:
    job = (await personas.call("POST", "/api/v1/jobs", "alice", json={"task": "t"})).json()
    suspended = await personas.call("POST", "/api/v1/tenants/acme/suspend", "admin")
    assert suspended.json()["status"] == "suspended"
    refused = await personas.call("GET", "/api/v1/jobs", "alice")
    assert refused.status_code == 403
    assert await personas.server.store.claim("acme", "default", "w", 10, 30.0) == []
    assert (await personas.call("GET", "/api/v1/jobs", "bob")).status_code == 200

    await personas.call("POST", "/api/v1/tenants/acme/resume", "admin")
    claimed = await personas.server.store.claim("acme", "default", "w", 10, 30.0)
    assert [j.id for j in claimed] == [job["id"]]


async def test_only_admins_manage_tenants(personas: Api) -> None:
    for method, path in (
        ("POST", "/api/v1/tenants/globex/suspend"),
        ("DELETE", "/api/v1/tenants/globex"),
    ):
        assert (await personas.call(method, path, "alice")).status_code == 403
    created = await personas.call(
        "POST", "/api/v1/tenants", "alice", json={"id": "x1", "name": "X"}
    )
    assert created.status_code == 403


async def test_a_deleted_tenant_is_gone_with_its_jobs(personas: Api) -> None:
    await personas.call("POST", "/api/v1/jobs", "bob", json={"task": "t"})
    assert (await personas.call("DELETE", "/api/v1/tenants/globex", "admin")).status_code == 204
    assert (await personas.call("GET", "/api/v1/tenants/globex", "admin")).status_code == 404
    assert (await personas.call("GET", "/api/v1/jobs", "bob")).status_code == 401
    assert (await personas.call("GET", "/api/v1/tenants/acme", "alice")).status_code == 200


async def test_usage_counts_the_tenants_jobs(personas: Api) -> None:
    jobs = [{"task": "t"}, {"task": "t"}, {"task": "u", "delay": 60}]
    await personas.call("POST", "/api/v1/jobs/batch", "alice", json={"jobs": jobs})
    usage = await personas.call("GET", "/api/v1/tenants/acme/usage", "alice")
    assert usage.status_code == 200
    assert usage.json()["jobs_by_state"] == {"available": 2, "scheduled": 1}
    assert usage.json()["storage_bytes"] > 0
    other = await personas.call("GET", "/api/v1/tenants/globex/usage", "bob")
    assert other.json()["jobs_by_state"] == {}
    assert (await personas.call("GET", "/api/v1/tenants/acme/usage", "carl")).status_code == 403


async def test_changes_are_audited_with_who_and_where(personas: Api) -> None:
    job = (await personas.call("POST", "/api/v1/jobs", "alice", json={"task": "t"})).json()
    await personas.call("POST", f"/api/v1/jobs/{job['id']}/cancel", "alice")
    await personas.call("GET", "/api/v1/jobs", "alice")  # reads are not audited
    entries = (await personas.call("GET", "/api/v1/audit", "alice")).json()["items"]
    mine = [e for e in entries if e["actor"] == "user:alice@acme.test"]
    assert [e["action"] for e in mine] == ["create_job", "cancel_job"]
    assert mine[1]["target"] == f"/api/v1/jobs/{job['id']}/cancel"
    assert mine[1]["ip"] == "203.0.113.7"
    assert (await personas.call("GET", "/api/v1/audit", "carl")).status_code == 403
    bob = (await personas.call("GET", "/api/v1/audit", "bob")).json()["items"]
    assert all("acme" not in e["target"] for e in bob)


async def test_sign_up_only_where_allowed(api: Api) -> None:
    admin = await api.admin()
    body = {"id": "open", "name": "Open", "allow_signup": True}
    assert (await api.client.post("/api/v1/tenants", json=body, headers=admin)).status_code == 201
    signup = {"tenant": "open", "email": "new@open.test", "password": "long enough pw"}
    assert (await api.client.post("/api/v1/auth/signup", json=signup)).status_code == 201
    session = await api.login("new@open.test", "long enough pw")
    me = (await api.client.get("/api/v1/auth/me", headers=session)).json()
    assert me["role"] == "member"
    closed = {**signup, "tenant": "default", "email": "x@y.test"}
    assert (await api.client.post("/api/v1/auth/signup", json=closed)).status_code == 403


async def test_audit_entries_buffered_at_shutdown_are_written(migrated_url: str) -> None:
    server = Server(server_settings(migrated_url))
    await server.start()
    transport = httpx.ASGITransport(app=create_app(server))
    async with httpx.AsyncClient(transport=transport, base_url="http://conveyor.test") as client:
        api = Api(client, server)
        admin = await api.admin()
        created = await client.post(
            "/api/v1/tenants", json={"id": "late", "name": "L"}, headers=admin
        )
        assert created.status_code == 201
    await server.stop()  # the flusher may not have run yet: stop writes what is left

    store = store_from_url(migrated_url)
    await store.open()
    try:
        entries = await accounts_for(store).list_audit("default")
    finally:
        await store.close()
    assert [e.action for e in entries] == ["create_tenant"]


async def test_usage_of_another_tenant_needs_signing_in_there(personas: Api) -> None:
    """Bob owns globex but is only an agent in acme: his globex token may not read
    acme's usage (his role there is what counts)."""
    acme_admin = await personas.login(ADMIN_EMAIL, ADMIN_PASSWORD, "acme")
    body = {"email": "bob@globex.test", "role": "agent"}
    added = await personas.client.post("/api/v1/users", json=body, headers=acme_admin)
    assert added.status_code == 201, added.text
    personas.headers["bob"] = await personas.login("bob@globex.test", tenant="globex")
    refused = await personas.call("GET", "/api/v1/tenants/acme/usage", "bob")
    assert refused.status_code == 403
    assert (await personas.call("GET", "/api/v1/tenants/globex/usage", "bob")).status_code == 200


async def test_the_last_owner_cannot_step_down(personas: Api) -> None:
    users = (await personas.call("GET", "/api/v1/users", "alice")).json()
    ids = {u["email"]: u["id"] for u in users}
    alice, carl = ids["alice@acme.test"], ids["carl@acme.test"]
    demote = {"role": "member"}
    other_owner = ids[ADMIN_EMAIL]  # who made the tenant owns it too
    made_member = await personas.call("PATCH", f"/api/v1/users/{other_owner}", "alice", json=demote)
    assert made_member.status_code == 200
    refused = await personas.call("PATCH", f"/api/v1/users/{alice}", "alice", json=demote)
    assert refused.status_code == 409 and "at least one owner" in refused.text
    promoted = await personas.call(
        "PATCH", f"/api/v1/users/{carl}", "alice", json={"role": "owner"}
    )
    assert promoted.status_code == 200
    stepped_down = await personas.call("PATCH", f"/api/v1/users/{alice}", "alice", json=demote)
    assert stepped_down.status_code == 200 and stepped_down.json()["role"] == "member"
