"""``/api/v1/webhooks`` in-process: owners manage Subscriptions, the secret is shown
once, the delivery log and redelivery, and who may do what (Alice owns acme, Carl is
an agent there)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.domain.jobs import new_job
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.anyio

HOOK = {"url": "http://127.0.0.1:9/hook", "event_types": ["job.*"], "description": "ops"}


async def _create(personas: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await personas.call("POST", "/api/v1/webhooks", "alice", json=body or HOOK)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_an_owner_creates_a_webhook_and_sees_its_secret_once(personas: Api) -> None:
    created = await _create(personas)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["event_types"] == ["job.*"] and created["enabled"] is True
    listed = await personas.call("GET", "/api/v1/webhooks", "alice")
    one = await personas.call("GET", f"/api/v1/webhooks/{created['id']}", "alice")
    assert [w["id"] for w in listed.json()] == [created["id"]]
    assert one.json()["url"] == HOOK["url"]
    for response in (listed, one):
        assert secret not in response.text and "secret" not in response.json().__str__()


async def test_a_webhook_is_changed_rotated_and_deleted(personas: Api) -> None:
    created = await _create(personas)
    path = f"/api/v1/webhooks/{created['id']}"
    changed = await personas.call(
        "PATCH", path, "alice", json={"enabled": False, "queues": ["mail"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False and changed.json()["queues"] == ["mail"]
    rotated = await personas.call("POST", f"{path}/rotate-secret", "alice")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != created["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert (await personas.call("DELETE", path, "alice")).status_code == 204
    assert (await personas.call("GET", path, "alice")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://user:pw@example.com/x"}, "url"),
        ({"url": "https://example.com", "event_types": ["job.*.x"]}, "event_types"),
        ({"url": "https://example.com", "secret": "mine"}, "secret"),
    ],
)
async def test_a_bad_webhook_is_refused_naming_the_field(
    personas: Api, body: dict[str, Any], field: str
) -> None:
    response = await personas.call("POST", "/api/v1/webhooks", "alice", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text


async def test_agents_and_members_may_not_manage_webhooks(personas: Api) -> None:
    created = await _create(personas)
    assert (await personas.call("GET", "/api/v1/webhooks", "carl")).status_code == 403
    path = f"/api/v1/webhooks/{created['id']}"
    assert (await personas.call("DELETE", path, "carl")).status_code == 403
    assert (await personas.call("GET", path, "bob")).status_code == 404


async def test_the_delivery_log_and_a_redelivery(personas: Api) -> None:
    created = await _create(personas)
    server = personas.server
    await server.store.enqueue([new_job("report.build", {}, tenant_id="acme")])
    notifier = server.notifier
    assert notifier is not None
    await notifier.run_once()
    await notifier.drain()
    path = f"/api/v1/webhooks/{created['id']}/deliveries"
    page = await personas.call("GET", path, "alice")
    assert page.status_code == 200, page.text
    [delivery] = page.json()["items"]
    assert delivery["event_type"] == "job.enqueued" and delivery["attempts"] == 1
    assert delivery["state"] == "pending" and delivery["status_code"] is None
    assert "refused" in delivery["error"]  # 127.0.0.1 is not allowlisted here
    assert delivery["message_id"] == f"evt_{delivery['event_id']}"
    again = await personas.call("POST", f"{path}/{delivery['id']}/redeliver", "alice")
    assert again.status_code == 200 and again.json()["state"] == "pending"
    missing = await personas.call("POST", f"{path}/999/redeliver", "alice")
    assert missing.status_code == 404
