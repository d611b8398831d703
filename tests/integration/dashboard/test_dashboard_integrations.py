"""The Webhooks and Incoming pages: Alice (owner of acme) adds, tests, rotates and
deletes Subscriptions and hooks through the forms, reads deliveries and receipts, and
redelivers; Bob (owner of globex) sees none of it, Carl (agent) is refused, and forms
without the CSRF token change nothing."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from markupsafe import escape
from standardwebhooks import Webhook

from conveyor.domain.webhooks import DeliveryState
from conveyor.net.policy import OutboundPolicy
from conveyor.net.webhook_sender import HttpSender
from conveyor.web.dashboard import pages_hooks, pages_webhooks
from tests.integration.dashboard.conftest import Browser, Dashboard
from tests.integration.dashboard.test_dashboard_browser import (
    IMAGES,
    Site,
    site,  # noqa: F401  (a fixture)
)
from tests.loopback import serving

pytestmark = pytest.mark.anyio

SENDER_IP = "203.0.113.9"
"""The address every dashboard test client connects from (see ``Dashboard.anonymous``)."""
PRIVATE_URL = "http://127.0.0.1:9/hook"
SECRET = re.compile(r'value="(whsec_[A-Za-z0-9+/=]+)"')
HOOK_URL = re.compile(r'value="http://127\.0\.0\.1:8000/hooks/([A-Za-z0-9_-]+)"')
WEBHOOK_LINK = re.compile(r'href="/webhooks/(\d+)"')
HOOK_LINK = re.compile(r'href="/incoming/(\d+)"')
RECEIPT_LINK = re.compile(r'href="/incoming/\d+/receipts/([0-9a-f]+)"')


def _escaped(text: str) -> str:
    """``text`` as the pages' templates write it into HTML."""
    return str(escape(text))


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that checks each signature with the secrets it
    knows and answers ``thanks``."""

    url: str = ""
    secrets: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    """The ``webhook-id`` of each verified request, in arrival order."""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, dict(request.headers))
            except Exception:  # noqa: S112 - another secret may verify it
                continue
            self.ids.append(request.headers["webhook-id"])
            return web.Response(status=200, text="thanks")
        return web.Response(status=401, text="bad signature")


@pytest.fixture
async def receiver(dash: Dashboard, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    """A real receiver, which test requests and the notifier may reach."""
    loopback = OutboundPolicy.from_entries(["127.0.0.1"])
    monkeypatch.setattr(dash.server, "_webhook_sender", lambda: HttpSender(loopback))
    assert dash.server.notifier is not None
    monkeypatch.setattr(dash.server.notifier, "sender", HttpSender(loopback))
    found = Receiver()
    async with serving(found.handle) as port:
        found.url = f"http://127.0.0.1:{port}/hook"
        yield found


async def _add_webhook(browser: Browser, url: str = PRIVATE_URL, **fields: str) -> tuple[int, str]:
    """A Subscription added through the form: its id and the secret shown once."""
    data = {"url": url, "event_types": "job.*", "enabled": "on", **fields}
    response = await browser.post("/webhooks", data)
    assert response.status_code == 200, response.text
    secret, link = SECRET.search(response.text), WEBHOOK_LINK.search(response.text)
    assert secret and link, response.text
    return int(link.group(1)), secret.group(1)


async def _add_hook(browser: Browser, name: str = "backups", **fields: str) -> tuple[int, str]:
    """A hook added through the form: its id and the URL token shown once."""
    response = await browser.post("/incoming", {"name": name, "enabled": "on", **fields})
    assert response.status_code == 200, response.text
    token, link = HOOK_URL.search(response.text), HOOK_LINK.search(response.text)
    assert token and link, response.text
    return int(link.group(1)), token.group(1)


async def _send(dash: Dashboard, token: str, body: bytes, **headers: str) -> dict[str, Any]:
    """POST ``body`` to a hook's URL as an outside sender; the answer."""
    response = await dash.anonymous().client.post(f"/hooks/{token}", content=body, headers=headers)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _deliver(dash: Dashboard) -> None:
    """Let the notifier make and send the due deliveries."""
    notifier = dash.server.notifier
    assert notifier is not None
    await notifier.run_once()
    await notifier.drain()


# -- webhooks --------------------------------------------------------------------------


async def test_an_owner_adds_a_webhook_and_sees_its_secret_once(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    assert "No webhooks yet" in (await alice.client.get("/webhooks")).text
    fields = {"event_types": "job.*, queue.paused", "queues": "mail", "description": "ops"}
    webhook_id, secret = await _add_webhook(alice, **fields)
    stored = await dash.server.webhook_store.get("acme", webhook_id, secrets=True)
    assert stored.secret == secret and stored.spec.enabled
    assert stored.spec.event_types == ("job.*", "queue.paused") and stored.spec.queues == ("mail",)
    listed = (await alice.client.get("/webhooks")).text
    assert PRIVATE_URL in listed and "queue.paused" in listed and "none yet" in listed
    for path in ("/webhooks", f"/webhooks/{webhook_id}", f"/webhooks/{webhook_id}/delete"):
        shown = await alice.client.get(path)
        assert shown.status_code == 200 and secret not in shown.text, path


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://user:pw@example.com/x"}, "url"),
        ({"event_types": "job.*.x"}, "event_types"),
        ({"description": "x" * 501}, "description"),
    ],
)
async def test_a_bad_webhook_form_is_shown_again_naming_the_field(
    dash: Dashboard, fields: dict[str, str], field_name: str
) -> None:
    alice = await dash.browser("alice")
    data = {"url": PRIVATE_URL, "event_types": "job.*", **fields}
    response = await alice.post("/webhooks", data)
    assert response.status_code == 400
    assert f'id="error-{field_name}"' in response.text and "Not added" in response.text
    assert _escaped(data["url"]) in response.text  # what was typed is kept
    assert SECRET.search(response.text) is None
    assert await dash.server.webhook_store.list_webhooks("acme") == []


async def test_a_private_address_is_treated_as_the_api_treats_it(dash: Dashboard) -> None:
    """The API takes any http(s) URL and the guard refuses private addresses when
    sending: the form does the same, and its test shows the API's refusal."""
    alice = await dash.browser("alice")
    webhook_id, _ = await _add_webhook(alice, url=PRIVATE_URL)
    api_test = await dash.api.call("POST", f"/api/v1/webhooks/{webhook_id}/test", "alice")
    refusal = api_test.json()["error"]
    assert "refused" in refusal and api_test.json()["delivered"] is False
    page = await alice.post(f"/webhooks/{webhook_id}/test")
    assert page.status_code == 200
    assert f"Not delivered: {_escaped(refusal)}" in page.text


async def test_a_test_request_reaches_the_receiver_signed(
    dash: Dashboard, receiver: Receiver
) -> None:
    alice = await dash.browser("alice")
    webhook_id, secret = await _add_webhook(alice, url=receiver.url)
    receiver.secrets.append(secret)
    page = await alice.post(f"/webhooks/{webhook_id}/test")
    assert "Delivered: the receiver answered 200" in page.text and "thanks" in page.text
    assert [i[:9] for i in receiver.ids] == ["msg_test_"]


async def test_a_webhook_is_disabled_enabled_rotated_and_deleted(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    webhook_id, secret = await _add_webhook(alice)
    path = f"/webhooks/{webhook_id}"
    off = await alice.post(f"{path}/disable")
    assert off.status_code == 303 and off.headers["location"] == f"{path}?done=disabled"
    assert not (await dash.server.webhook_store.get("acme", webhook_id)).spec.enabled
    assert "Enable</button>" in (await alice.client.get(path)).text
    assert (await alice.post(f"{path}/enable")).status_code == 303
    assert (await dash.server.webhook_store.get("acme", webhook_id)).spec.enabled

    rotated = await alice.post(f"{path}/rotate")
    found = SECRET.search(rotated.text)
    assert rotated.status_code == 200 and found and found.group(1) != secret
    stored = await dash.server.webhook_store.get("acme", webhook_id, secrets=True)
    assert stored.secret == found.group(1) and stored.previous_secret == secret
    assert "The old secret also signs until" in rotated.text
    assert found.group(1) not in (await alice.client.get(path)).text

    confirm = await alice.client.get(f"{path}/delete")
    assert confirm.status_code == 200 and f'action="{path}/delete"' in confirm.text
    assert await dash.server.webhook_store.list_webhooks("acme") != []  # asking deletes nothing
    deleted = await alice.post(f"{path}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/webhooks?done=deleted"
    assert await dash.server.webhook_store.list_webhooks("acme") == []
    assert (await alice.client.get(path)).status_code == 404


async def test_replacing_a_webhook_secret_is_asked_first(dash: Dashboard) -> None:
    """ "Rotate secret" opens a page that asks: opening it (twice, as a double click
    would) replaces nothing; its form replaces the secret and shows the new one once."""
    alice = await dash.browser("alice")
    webhook_id, secret = await _add_webhook(alice)
    path = f"/webhooks/{webhook_id}"
    assert f'href="{path}/rotate"' in (await alice.client.get(path)).text
    for _ in range(2):
        confirm = await alice.client.get(f"{path}/rotate")
        assert confirm.status_code == 200 and f'action="{path}/rotate"' in confirm.text
        assert 'name="csrf_token"' in confirm.text and f'href="{path}">Cancel' in confirm.text
        assert "24 more hours" in confirm.text and SECRET.search(confirm.text) is None
    stored = await dash.server.webhook_store.get("acme", webhook_id, secrets=True)
    assert stored.secret == secret and stored.previous_secret is None

    rotated = await alice.post(f"{path}/rotate")
    found = SECRET.search(rotated.text)
    assert rotated.status_code == 200 and found and found.group(1) != secret
    assert rotated.text.count(found.group(1)) == 1
    assert (
        await dash.server.webhook_store.get("acme", webhook_id, secrets=True)
    ).secret == found.group(1)
    asked_again = (await alice.client.get(f"{path}/rotate")).text
    assert found.group(1) not in asked_again and "stops signing at once" in asked_again


async def test_a_webhook_is_changed_through_its_form(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    webhook_id, _ = await _add_webhook(alice, queues="mail")
    path = f"/webhooks/{webhook_id}"
    form = (await alice.client.get(path)).text
    assert f'action="{path}/edit"' in form and 'name="queues" value="mail"' in form
    changes = {"url": "http://127.0.0.1:9/new", "event_types": "job.succeeded", "queues": ""}
    saved = await alice.post(f"{path}/edit", changes)
    assert saved.status_code == 303 and saved.headers["location"] == f"{path}?done=changed"
    spec = (await dash.server.webhook_store.get("acme", webhook_id)).spec
    assert (spec.url, spec.event_types, spec.queues) == (changes["url"], ("job.succeeded",), ())
    refused = await alice.post(f"{path}/edit", {**changes, "event_types": "job.*.x"})
    assert refused.status_code == 400 and 'id="error-event_types"' in refused.text
    assert "Not saved" in refused.text and 'value="job.*.x"' in refused.text
    assert (await dash.server.webhook_store.get("acme", webhook_id)).spec == spec


async def test_deliveries_are_listed_and_redelivered(dash: Dashboard, receiver: Receiver) -> None:
    alice = await dash.browser("alice")
    webhook_id, secret = await _add_webhook(alice, url=receiver.url)
    receiver.secrets.append(secret)
    job_id = await dash.enqueue("alice", task="report")
    await _deliver(dash)
    ids = receiver.ids
    assert len(ids) == 1
    path = f"/webhooks/{webhook_id}"
    page = (await alice.client.get(path)).text
    [delivery] = await dash.server.webhook_store.list_deliveries("acme", webhook_id, 10, None)
    assert delivery.state is DeliveryState.DELIVERED
    row = page[page.index(f'id="delivery-{delivery.id}"') :]
    assert "job.enqueued" in row and f'href="/jobs/{job_id}"' in row
    assert "state-completed" in row and ">200<" in row and "thanks" in row
    assert _escaped('"type": "job.enqueued"') in row  # the request body, indented
    assert (await alice.client.get("/webhooks")).text.count(">200<") == 1  # the last delivery

    again = await alice.post(f"{path}/deliveries/{delivery.id}/redeliver")
    assert again.status_code == 303 and again.headers["location"] == f"{path}?done=redelivered"
    [pending] = await dash.server.webhook_store.list_deliveries("acme", webhook_id, 10, None)
    assert pending.state is DeliveryState.PENDING
    await _deliver(dash)
    assert ids == [delivery.message_id, delivery.message_id]  # the same webhook-id again
    assert (await alice.post(f"{path}/deliveries/999/redeliver")).status_code == 404


async def test_deliveries_come_a_page_at_a_time(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages_webhooks, "PAGE_SIZE", 2)
    alice = await dash.browser("alice")
    webhook_id, _ = await _add_webhook(alice)
    for _ in range(3):
        await dash.enqueue("alice")
    await _deliver(dash)
    found = await dash.server.webhook_store.list_deliveries("acme", webhook_id, 10, None)
    newest, middle, oldest = (d.id for d in found)
    first = (await alice.client.get(f"/webhooks/{webhook_id}")).text
    assert f'id="delivery-{newest}"' in first and f'id="delivery-{oldest}"' not in first
    assert f'href="/webhooks/{webhook_id}?before={middle}"' in first
    older = (await alice.client.get(f"/webhooks/{webhook_id}?before={middle}")).text
    assert f'id="delivery-{oldest}"' in older and f'id="delivery-{newest}"' not in older
    assert (await alice.client.get(f"/webhooks/{webhook_id}?before=x")).status_code == 400


# -- incoming hooks --------------------------------------------------------------------


async def test_a_hook_is_added_with_its_url_shown_once(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    assert "No incoming hooks yet" in (await alice.client.get("/incoming")).text
    hook_id, token = await _add_hook(alice, task="backup.finished", verify="none")
    hook = await dash.server.hook_store.get("acme", hook_id)
    assert hook.spec.name == "backups" and hook.spec.task == "backup.finished"
    for path in ("/incoming", f"/incoming/{hook_id}"):
        shown = await alice.client.get(path)
        assert shown.status_code == 200 and token not in shown.text, path
        assert "backup.finished" in shown.text
    await _send(dash, token, b"{}", **{"Content-Type": "application/json"})


async def test_a_hmac_hook_shows_the_secret_it_made_once(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    response = await alice.post("/incoming", {"name": "gh", "verify": "hmac-sha256"})
    assert response.status_code == 200
    shown = re.search(r'value="([^"]+)" aria-label="verification secret"', response.text)
    assert shown is not None
    [hook] = await dash.server.hook_store.list_hooks("acme")
    assert hook.secret == shown.group(1)
    assert shown.group(1) not in (await alice.client.get(f"/incoming/{hook.id}")).text


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        ({"name": ""}, "name"),
        ({"priority": "12"}, "priority"),
        ({"priority": "soon"}, "priority"),
        ({"verify": "md5"}, "verify"),
        ({"verify": "hmac-sha256", "secret": "short"}, "secret"),
        ({"task": "shell"}, "task"),
    ],
)
async def test_a_bad_hook_form_is_shown_again_naming_the_field(
    dash: Dashboard, fields: dict[str, str], field_name: str
) -> None:
    alice = await dash.browser("alice")
    response = await alice.post("/incoming", {"name": "backups", **fields})
    assert response.status_code == 400
    assert f'id="error-{field_name}"' in response.text and "Not added" in response.text
    assert HOOK_URL.search(response.text) is None
    assert await dash.server.hook_store.list_hooks("acme") == []


async def test_a_hook_is_changed_and_a_new_scheme_shows_its_secret_once(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice, task="backup.finished", priority="2")
    path = f"/incoming/{hook_id}"
    form = (await alice.client.get(path)).text
    assert 'name="task" maxlength="128" value="backup.finished"' in form
    bad = await alice.post(f"{path}/edit", {"name": "backups", "task": "x", "priority": "12"})
    assert bad.status_code == 400 and 'id="error-priority"' in bad.text
    assert (await dash.server.hook_store.get("acme", hook_id)).spec.priority == 2

    data = {"name": "nightly", "verify": "standard-webhooks", "task": "", "enabled": "on"}
    changed = await alice.post(f"{path}/edit", data)
    assert changed.status_code == 200 and "New secret for nightly" in changed.text
    shown = re.search(r'value="([^"]+)" aria-label="verification secret"', changed.text)
    hook = await dash.server.hook_store.get("acme", hook_id)
    assert shown and hook.secret == shown.group(1) and hook.secret.startswith("whsec_")
    assert (hook.spec.name, hook.spec.task, hook.spec.priority) == ("nightly", None, None)
    assert HOOK_URL.search(changed.text) is None  # the URL stays as it was
    assert hook.secret not in (await alice.client.get(path)).text
    renamed = await alice.post(f"{path}/edit", {"name": "again", "verify": "standard-webhooks"})
    assert renamed.status_code == 303 and renamed.headers["location"] == f"{path}?done=changed"
    assert not (await dash.server.hook_store.get("acme", hook_id)).spec.enabled
    sender = dash.anonymous().client
    assert (await sender.post(f"/hooks/{token}", content=b"x")).status_code == 404  # disabled


async def test_a_second_hook_of_the_same_name_is_refused_on_the_name(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    await _add_hook(alice)
    again = await alice.post("/incoming", {"name": "backups"})
    assert again.status_code == 400 and 'id="error-name"' in again.text
    assert "exists already" in again.text
    assert len(await dash.server.hook_store.list_hooks("acme")) == 1


async def test_receipts_show_the_sender_and_time_and_escape_the_body(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice)
    body = b"<script>alert('x')</script> & more"
    answer = await _send(
        dash, token, body, **{"Content-Type": "text/html", "Cookie": "sid=sender-secret"}
    )
    receipt = await dash.server.hook_store.get_receipt("acme", hook_id, answer["receipt_id"])
    listing = (await alice.client.get(f"/incoming/{hook_id}")).text
    assert SENDER_IP in listing and receipt.received_at.strftime("%Y-%m-%d %H:%M:%S") in listing
    assert RECEIPT_LINK.findall(listing)[0] == receipt.id and "text/html" in listing
    page = await alice.client.get(f"/incoming/{hook_id}/receipts/{receipt.id}")
    assert page.status_code == 200 and SENDER_IP in page.text
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in page.text
    assert "sender-secret" not in page.text and "[redacted]" in page.text

    download = await alice.client.get(f"/incoming/{hook_id}/receipts/{receipt.id}/body")
    assert download.status_code == 200 and download.content == body
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="receipt-{receipt.id}.bin"'
    )


async def test_a_json_body_is_indented_and_a_binary_one_only_downloaded(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice)
    sent = await _send(
        dash, token, b'{"b":[1,2],"a":"<b>"}', **{"Content-Type": "application/json"}
    )
    page = (await alice.client.get(f"/incoming/{hook_id}/receipts/{sent['receipt_id']}")).text
    assert _escaped(json.dumps({"a": "<b>", "b": [1, 2]}, indent=2)) in page
    binary = bytes(range(256))
    sent = await _send(dash, token, binary, **{"Content-Type": "application/zip"})
    path = f"/incoming/{hook_id}/receipts/{sent['receipt_id']}"
    assert "Not UTF-8 text" in (await alice.client.get(path)).text
    assert (await alice.client.get(f"{path}/body")).content == binary


async def test_a_large_body_is_shown_in_part_and_downloaded_whole(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice)
    body = ("é" * 40_000).encode() + b"THE-END"  # 80,007 bytes, cut inside a character
    sent = await _send(dash, token, body, **{"Content-Type": "text/plain"})
    path = f"/incoming/{hook_id}/receipts/{sent['receipt_id']}"
    page = (await alice.client.get(path)).text
    assert "Only the first 64.0 KiB" in page and "THE-END" not in page
    assert "é" * 32_000 in page
    assert (await alice.client.get(f"{path}/body")).content == body


async def test_a_receipt_links_the_job_its_hook_made(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice, task="backup.finished")
    sent = await _send(dash, token, b'{"ok": true}', **{"Content-Type": "application/json"})
    assert sent["job_id"] is not None
    for path in (f"/incoming/{hook_id}", f"/incoming/{hook_id}/receipts/{sent['receipt_id']}"):
        assert f'href="/jobs/{sent["job_id"]}"' in (await alice.client.get(path)).text, path


async def test_receipts_come_a_page_at_a_time(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages_hooks, "PAGE_SIZE", 2)
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice)
    sent = [(await _send(dash, token, f"n{n}".encode()))["receipt_id"] for n in range(3)]
    first = (await alice.client.get(f"/incoming/{hook_id}")).text
    newest_first = RECEIPT_LINK.findall(first)
    assert len(set(newest_first)) == 2 and sent[2] in newest_first
    older_link = re.search(rf'href="/incoming/{hook_id}\?before=([0-9a-f]+)"', first)
    assert older_link is not None
    older = (await alice.client.get(f"/incoming/{hook_id}?before={older_link.group(1)}")).text
    assert set(RECEIPT_LINK.findall(older)) == {sent[0]}
    assert (await alice.client.get(f"/incoming/{hook_id}?before=zz")).status_code == 400


async def test_a_hook_gets_a_new_url_and_is_deleted(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice)
    rotated = await alice.post(f"/incoming/{hook_id}/rotate-token")
    found = HOOK_URL.search(rotated.text)
    assert rotated.status_code == 200 and found and found.group(1) != token
    sender = dash.anonymous().client
    assert (await sender.post(f"/hooks/{token}", content=b"x")).status_code == 404
    await _send(dash, found.group(1), b"x")
    assert found.group(1) not in (await alice.client.get(f"/incoming/{hook_id}")).text

    confirm = await alice.client.get(f"/incoming/{hook_id}/delete")
    assert confirm.status_code == 200 and "Delete hook backups?" in confirm.text
    deleted = await alice.post(f"/incoming/{hook_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/incoming?done=deleted"
    assert await dash.server.hook_store.list_hooks("acme") == []
    assert (await sender.post(f"/hooks/{found.group(1)}", content=b"x")).status_code == 404


async def test_a_new_hook_url_is_asked_first(dash: Dashboard) -> None:
    """ "New URL" opens a page that asks: opening it (twice, as a double click would)
    leaves the URL working; its form makes a new URL and shows it once."""
    alice = await dash.browser("alice")
    hook_id, token = await _add_hook(alice)
    path = f"/incoming/{hook_id}"
    assert f'href="{path}/rotate-token"' in (await alice.client.get(path)).text
    for _ in range(2):
        confirm = await alice.client.get(f"{path}/rotate-token")
        assert confirm.status_code == 200 and f'action="{path}/rotate-token"' in confirm.text
        assert 'name="csrf_token"' in confirm.text and f'href="{path}">Cancel' in confirm.text
        assert "answers 404 at once" in confirm.text and HOOK_URL.search(confirm.text) is None
    await _send(dash, token, b"the URL still works")

    rotated = await alice.post(f"{path}/rotate-token")
    found = HOOK_URL.search(rotated.text)
    assert rotated.status_code == 200 and found and found.group(1) != token
    assert rotated.text.count(found.group(1)) == 1 and "New URL for backups" in rotated.text
    await _send(dash, found.group(1), b"the new URL works")
    assert found.group(1) not in (await alice.client.get(f"{path}/rotate-token")).text


# -- who may do what -------------------------------------------------------------------


async def test_another_tenant_sees_none_of_it_and_changes_nothing(dash: Dashboard) -> None:
    alice, bob = await dash.browser("alice"), await dash.browser("bob")
    webhook_id, _ = await _add_webhook(alice)
    await dash.enqueue("alice")
    await _deliver(dash)
    [delivery] = await dash.server.webhook_store.list_deliveries("acme", webhook_id, 10, None)
    hook_id, token = await _add_hook(alice)
    receipt_id = (await _send(dash, token, b"private"))["receipt_id"]
    receipt = f"/incoming/{hook_id}/receipts/{receipt_id}"
    for path in (
        f"/webhooks/{webhook_id}",
        f"/webhooks/{webhook_id}/delete",
        f"/webhooks/{webhook_id}/rotate",
        f"/incoming/{hook_id}",
        f"/incoming/{hook_id}/delete",
        f"/incoming/{hook_id}/rotate-token",
        receipt,
        f"{receipt}/body",
    ):
        response = await bob.client.get(path)
        assert response.status_code == 404 and "private" not in response.text, path
    for path in (
        f"/webhooks/{webhook_id}/deliveries/{delivery.id}/redeliver",
        f"/webhooks/{webhook_id}/disable",
        f"/webhooks/{webhook_id}/rotate",
        f"/webhooks/{webhook_id}/test",
        f"/webhooks/{webhook_id}/delete",
        f"/webhooks/{webhook_id}/edit",
        f"/incoming/{hook_id}/rotate-token",
        f"/incoming/{hook_id}/delete",
        f"/incoming/{hook_id}/edit",
    ):
        data = {"url": "http://127.0.0.1:9/bob", "name": "bobs"}
        assert (await bob.post(path, data)).status_code == 404, path
    unchanged = await dash.server.webhook_store.list_deliveries("acme", webhook_id, 10, None)
    assert unchanged == [delivery]
    webhook = await dash.server.webhook_store.get("acme", webhook_id)
    assert webhook.spec.enabled and webhook.spec.url == PRIVATE_URL
    assert (await dash.server.hook_store.get("acme", hook_id)).spec.name == "backups"
    await _send(dash, token, b"still here")  # the URL was not rotated, the hook not deleted
    assert "No webhooks yet" in (await bob.client.get("/webhooks")).text
    assert "No incoming hooks yet" in (await bob.client.get("/incoming")).text


async def test_an_agent_is_refused_every_page_and_form(dash: Dashboard) -> None:
    alice, carl = await dash.browser("alice"), await dash.browser("carl")
    webhook_id, _ = await _add_webhook(alice)
    hook_id, token = await _add_hook(alice)
    receipt_id = (await _send(dash, token, b"x"))["receipt_id"]
    for path in (
        "/webhooks",
        f"/webhooks/{webhook_id}",
        f"/webhooks/{webhook_id}/delete",
        f"/webhooks/{webhook_id}/rotate",
        "/incoming",
        f"/incoming/{hook_id}",
        f"/incoming/{hook_id}/rotate-token",
        f"/incoming/{hook_id}/receipts/{receipt_id}",
        f"/incoming/{hook_id}/receipts/{receipt_id}/body",
    ):
        assert (await carl.client.get(path)).status_code == 403, path
    for path, data in (
        ("/webhooks", {"url": "http://127.0.0.1:9/x"}),
        (f"/webhooks/{webhook_id}/delete", {}),
        (f"/webhooks/{webhook_id}/rotate", {}),
        ("/incoming", {"name": "mine"}),
        (f"/incoming/{hook_id}/rotate-token", {}),
        (f"/incoming/{hook_id}/delete", {}),
        (f"/incoming/{hook_id}/edit", {"name": "carls"}),
        (f"/webhooks/{webhook_id}/edit", {"url": "http://127.0.0.1:9/carl"}),
    ):
        assert (await carl.post(path, data)).status_code == 403, path
    assert len(await dash.server.webhook_store.list_webhooks("acme")) == 1
    assert len(await dash.server.hook_store.list_hooks("acme")) == 1


async def test_forms_without_the_csrf_token_change_nothing(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    webhook_id, secret = await _add_webhook(alice)
    hook_id, token = await _add_hook(alice)
    forged = {"csrf_token": ""}
    for path, data in (
        ("/webhooks", {"url": "http://127.0.0.1:9/x"}),
        (f"/webhooks/{webhook_id}/disable", {}),
        (f"/webhooks/{webhook_id}/rotate", {}),
        (f"/webhooks/{webhook_id}/delete", {}),
        ("/incoming", {"name": "other"}),
        (f"/incoming/{hook_id}/rotate-token", {}),
        (f"/incoming/{hook_id}/delete", {}),
        (f"/incoming/{hook_id}/edit", {"name": "forged", "verify": "hmac-sha256"}),
        (f"/webhooks/{webhook_id}/edit", {"url": "http://127.0.0.1:9/forged"}),
    ):
        response = await alice.post(path, {**data, **forged})
        assert response.status_code == 403, path
        assert "whsec_" not in response.text and "/hooks/" not in response.text.split("<main")[-1]
    [listed] = await dash.server.webhook_store.list_webhooks("acme")
    webhook = await dash.server.webhook_store.get("acme", listed.id, secrets=True)
    assert webhook.secret == secret and webhook.spec.enabled and webhook.spec.url == PRIVATE_URL
    [hook] = await dash.server.hook_store.list_hooks("acme")
    assert (hook.id, hook.spec.name, hook.spec.verify) == (hook_id, "backups", "none")
    await _send(dash, token, b"the old URL still works")


# -- in a real browser -----------------------------------------------------------------


async def test_in_a_browser_the_forms_work_and_a_received_script_never_runs(site: Site) -> None:  # noqa: F811
    page = await site.page_for("alice@acme.test")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    await page.goto(f"{site.url}/webhooks")
    await page.fill("input[name=url]", "http://127.0.0.1:9/conveyor")
    await page.fill("input[name=event_types]", "job.* queue.paused")
    await page.click("text=Add webhook")
    secret = await page.input_value("input[aria-label='signing secret']")
    assert secret.startswith("whsec_")
    await page.screenshot(path=str(IMAGES / "dashboard-webhook-secret.png"))
    await page.click("text=Done")
    assert secret not in await page.content()
    await page.screenshot(path=str(IMAGES / "dashboard-webhook.png"))

    await page.goto(f"{site.url}/incoming")
    await page.fill("input[name=name]", "backups")
    await page.fill("input[name=task]", "backup.finished")
    await page.fill("input[name=priority]", "3")
    await page.click("text=Add hook")
    url = await page.input_value("input[aria-label='hook URL']")
    hooks_url = url.replace("http://127.0.0.1:8000", site.url)
    script = b"<script>alert('x')</script><img src=x onerror=alert(2)>"
    sent = await site.api.client.post(
        hooks_url, content=script, headers={"Content-Type": "text/html"}
    )
    assert sent.status_code == 202, sent.text
    await page.click("text=Done")
    await page.click("text=Open")
    shown = await page.text_content("pre.code")
    assert shown == script.decode()
    await page.screenshot(path=str(IMAGES / "dashboard-hook-receipt.png"), full_page=True)
    await page.goto(f"{site.url}/incoming")
    await page.fill("input[name=name]", "backups")
    await page.click("text=Add hook")
    assert await page.is_visible("#error-name")
    layout = await page.eval_on_selector(".form-grid", "form => getComputedStyle(form).display")
    assert layout == "grid"  # the page's own stylesheet was allowed to load
    await page.screenshot(path=str(IMAGES / "dashboard-hooks.png"), full_page=True)

    notifier = site.api.server.notifier  # the job the hook made is a job.enqueued event
    assert notifier is not None
    await notifier.run_once()
    await notifier.drain()
    await page.goto(f"{site.url}/webhooks/1")
    await page.click("text=Request and response")
    assert await page.is_visible("text=refused")  # 127.0.0.1 is not allowlisted: never dialled
    await page.screenshot(path=str(IMAGES / "dashboard-webhook-deliveries.png"), full_page=True)
    assert dialogs == [] and not [m for m in refused if "Content Security Policy" in m]


async def test_changes_made_on_these_pages_are_audited(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    webhook_id, _ = await _add_webhook(alice)
    await alice.post(f"/webhooks/{webhook_id}/rotate")
    hook_id, _ = await _add_hook(alice)
    await alice.post(f"/incoming/{hook_id}/delete")
    assert (await alice.post("/incoming", {"name": ""})).status_code == 400  # refused: no entry
    await dash.server.audit.flush()
    entries = await dash.server.accounts_store.list_audit("acme")
    mine = [(e.action, e.detail) for e in entries if e.actor == "user:alice@acme.test"]
    assert [action for action, _ in mine] == [
        "create_webhook",
        "rotate_webhook_secret",
        "create_hook",
        "delete_hook",
    ]
    assert mine[1][1]["webhook_id"] == str(webhook_id) and mine[3][1]["hook_id"] == str(hook_id)
