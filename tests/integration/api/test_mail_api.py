"""``/api/v1/mail`` and ``/api/v1/me/mail`` in-process: owners manage mail rules,
members list them, agents neither; another tenant's rule does not exist; bad input
names its field; each user sets their own summary preferences; jobs record who created
them."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.domain.jobs import new_job
from tests.integration.api.conftest import PASSWORD, Api

pytestmark = pytest.mark.anyio

RULE = {"scope": "task:cnpj.lookup", "on": ["started", "succeeded", "failed"], "to": ["owner"]}


async def _create(personas: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await personas.call("POST", "/api/v1/mail/rules", "alice", json=body or RULE)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _member(personas: Api) -> dict[str, str]:
    body = {"email": "dana@acme.test", "role": "member", "password": PASSWORD}
    response = await personas.call("POST", "/api/v1/users", "alice", json=body)
    assert response.status_code == 201, response.text
    return await personas.login("dana@acme.test")


async def test_an_owner_creates_lists_and_deletes_a_rule(personas: Api) -> None:
    created = await _create(personas)
    assert created["scope"] == "task:cnpj.lookup" and created["to"] == ["owner"]
    assert created["created_by"] == "user:alice@acme.test"
    listed = await personas.call("GET", "/api/v1/mail/rules", "alice")
    assert [r["id"] for r in listed.json()] == [created["id"]]
    path = f"/api/v1/mail/rules/{created['id']}"
    assert (await personas.call("GET", path, "alice")).json()["on"] == RULE["on"]
    assert (await personas.call("DELETE", path, "alice")).status_code == 204
    assert (await personas.call("GET", path, "alice")).status_code == 404


async def test_another_tenants_rule_does_not_exist(personas: Api) -> None:
    created = await _create(personas)
    path = f"/api/v1/mail/rules/{created['id']}"
    assert (await personas.call("GET", path, "bob")).status_code == 404
    assert (await personas.call("DELETE", path, "bob")).status_code == 404
    assert (await personas.call("GET", "/api/v1/mail/rules", "bob")).json() == []
    assert (await personas.call("GET", path, "alice")).status_code == 200


async def test_members_list_rules_agents_do_not_and_only_owners_change_them(
    personas: Api,
) -> None:
    created = await _create(personas)
    dana = await _member(personas)
    listed = await personas.client.get("/api/v1/mail/rules", headers=dana)
    assert listed.status_code == 200 and len(listed.json()) == 1
    refused = await personas.client.post("/api/v1/mail/rules", json=RULE, headers=dana)
    assert refused.status_code == 403
    path = f"/api/v1/mail/rules/{created['id']}"
    assert (await personas.client.delete(path, headers=dana)).status_code == 403
    assert (await personas.client.get("/api/v1/mail/outbox", headers=dana)).status_code == 403
    assert (await personas.call("GET", "/api/v1/mail/rules", "carl")).status_code == 403
    outbox = await personas.call("GET", "/api/v1/mail/outbox", "alice")
    assert outbox.status_code == 200 and outbox.json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**RULE, "scope": "queue:mail"}, "scope"),
        ({**RULE, "on": ["cancelled"]}, "on"),
        ({**RULE, "on": []}, "on"),
        ({**RULE, "to": ["not-an-address"]}, "to"),
        ({**RULE, "cc": ["x@y.test"]}, "cc"),
    ],
)
async def test_a_bad_rule_is_refused_naming_the_field(
    personas: Api, body: dict[str, Any], field: str
) -> None:
    response = await personas.call("POST", "/api/v1/mail/rules", "alice", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


async def test_a_job_rule_must_name_a_job_of_the_tenant(personas: Api) -> None:
    [theirs] = await personas.server.store.enqueue([new_job("report.build", tenant_id="globex")])
    body = {"scope": f"job:{theirs.id}", "on": ["succeeded"], "to": ["ops@acme.test"]}
    response = await personas.call("POST", "/api/v1/mail/rules", "alice", json=body)
    assert response.status_code == 404
    job = await personas.call("POST", "/api/v1/jobs", "alice", json={"task": "report.build"})
    body["scope"] = f"job:{job.json()['id']}"
    assert (
        await personas.call("POST", "/api/v1/mail/rules", "alice", json=body)
    ).status_code == 201


async def test_a_job_records_who_created_it_without_showing_it(personas: Api) -> None:
    job = await personas.call("POST", "/api/v1/jobs", "alice", json={"task": "report.build"})
    assert job.status_code == 201, job.text
    assert "created_by" not in job.json()  # agents read jobs too: no creator emails
    stored = await personas.server.store.get_job("acme", job.json()["id"])
    assert stored.created_by == "alice@acme.test"


async def test_each_user_sets_their_own_summary_preferences(personas: Api) -> None:
    mine = await personas.call("GET", "/api/v1/me/mail", "alice")
    assert mine.json() == {"time_zone": "UTC", "summary_at": "19:00", "summary_enabled": True}
    change = {"time_zone": "America/Sao_Paulo", "summary_at": "07:30"}
    changed = await personas.call("PATCH", "/api/v1/me/mail", "alice", json=change)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**change, "summary_enabled": True}
    off = await personas.call("PATCH", "/api/v1/me/mail", "alice", json={"summary_enabled": False})
    assert off.json()["summary_enabled"] is False and off.json()["summary_at"] == "07:30"
    bobs = await personas.call("GET", "/api/v1/me/mail", "bob")
    assert bobs.json()["summary_at"] == "19:00"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"summary_at": "7pm"}, "summary_at"),
        ({"summary_at": "24:00"}, "summary_at"),
        ({"email": "x@y.test"}, "email"),
    ],
)
async def test_bad_preferences_are_refused_naming_the_field(
    personas: Api, body: dict[str, Any], field: str
) -> None:
    response = await personas.call("PATCH", "/api/v1/me/mail", "alice", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_an_api_key_has_no_mail_preferences(personas: Api) -> None:
    created = await personas.call(
        "POST", "/api/v1/api-keys", "alice", json={"name": "ci", "scopes": ["jobs:read"]}
    )
    as_key = {"X-API-Key": created.json()["key"]}
    assert (await personas.client.get("/api/v1/me/mail", headers=as_key)).status_code == 403
