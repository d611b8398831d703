"""Users, API keys, tenants and usage on the dashboard: who may see them, what the
forms change, and that they answer as the API does."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.api.conftest import ADMIN_EMAIL, PASSWORD
from tests.integration.dashboard.conftest import ORIGIN, Browser, Dashboard

pytestmark = pytest.mark.anyio

MEMBER_EMAIL = "mia@acme.test"
NEW_KEY = re.compile(r'<code class="secret" id="new-key">([^<]+)</code>')
NEW_PASSWORD = re.compile(r'<code class="secret" id="new-password">([^<]+)</code>')
OWNER_PAGES = ("/users", "/keys", "/usage")


async def member_of_acme(dash: Dashboard) -> Browser:
    """Mia, a ``member`` of acme added by Alice through the API, signed in."""
    body = {"email": MEMBER_EMAIL, "role": "member", "password": PASSWORD}
    response = await dash.api.call("POST", "/api/v1/users", "alice", json=body)
    assert response.status_code == 201, response.text
    mia = dash.anonymous()
    assert (await mia.sign_in(MEMBER_EMAIL)).status_code == 303
    return mia


async def api_users(dash: Dashboard, who: str) -> dict[str, dict[str, Any]]:
    """The users of ``who``'s tenant as the API lists them, by email."""
    response = await dash.api.call("GET", "/api/v1/users", who)
    assert response.status_code == 200, response.text
    return {user["email"]: user for user in response.json()}


async def api_keys(dash: Dashboard, who: str) -> list[dict[str, Any]]:
    """The API keys of ``who``'s tenant as the API lists them."""
    response = await dash.api.call("GET", "/api/v1/api-keys", who)
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()
    return keys


async def api_tenant(dash: Dashboard, tenant: str) -> dict[str, Any] | None:
    """A tenant as the API shows it to the admin, or ``None`` once it is gone."""
    response = await dash.api.call("GET", f"/api/v1/tenants/{tenant}", "admin")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def field_error(html: str, field: str) -> str:
    """The problem shown next to a form field."""
    found = re.search(rf'<span class="field-error" id="error-{field}" role="alert">([^<]*)<', html)
    assert found, f"no problem is shown next to {field}"
    return found.group(1)


# -- who may see what --------------------------------------------------------------------


async def test_owner_pages_are_for_owners_only(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    carl = await dash.browser("carl")
    mia = await member_of_acme(dash)
    for path in OWNER_PAGES:
        assert (await alice.client.get(path)).status_code == 200, path
        assert (await carl.client.get(path)).status_code == 403, path
        assert (await mia.client.get(path)).status_code == 403, path
    listing = (await alice.client.get("/jobs")).text
    assert all(f'href="{path}"' in listing for path in OWNER_PAGES)
    assert 'href="/users"' not in (await mia.client.get("/jobs")).text
    for path, data in (("/users", {"email": "x@acme.test"}), ("/keys", {"name": "k"})):
        refused = await mia.post(path, {**data, "role": "owner", "scopes": "admin"})
        assert refused.status_code == 403, path
    assert set(await api_users(dash, "alice")) == {
        "admin@example.com",
        "alice@acme.test",
        "carl@acme.test",
        MEMBER_EMAIL,
    }
    assert await api_keys(dash, "alice") == []


async def test_the_tenants_page_is_for_platform_admins_only(dash: Dashboard) -> None:
    admin = await dash.browser("admin")
    alice = await dash.browser("alice")
    carl = await dash.browser("carl")
    page = await admin.client.get("/tenants")
    assert page.status_code == 200
    assert 'id="tenant-acme"' in page.text and 'id="tenant-globex"' in page.text
    assert (await alice.client.get("/tenants")).status_code == 403
    assert (await carl.client.get("/tenants")).status_code == 403
    assert 'href="/tenants"' not in (await alice.client.get("/jobs")).text
    refused = await alice.post("/tenants/globex/suspend")
    assert refused.status_code == 403
    assert (await alice.post("/tenants", {"id": "mine", "name": "Mine"})).status_code == 403
    assert (await api_tenant(dash, "globex") or {})["status"] == "active"
    assert await api_tenant(dash, "mine") is None


async def test_an_owner_never_sees_another_tenants_users_or_keys(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    bob = await dash.browser("bob")
    created = await alice.post("/keys", {"name": "acme worker", "scopes": "jobs:read"})
    assert created.status_code == 200
    (acme_key,) = await api_keys(dash, "alice")
    carl_id = (await api_users(dash, "alice"))["carl@acme.test"]["id"]
    users = (await bob.client.get("/users")).text
    assert "bob@globex.test" in users
    assert "alice@acme.test" not in users and "carl@acme.test" not in users
    keys = (await bob.client.get("/keys")).text
    assert "acme worker" not in keys and acme_key["prefix"] not in keys
    assert (await bob.client.get(f"/users/{carl_id}/remove")).status_code == 404
    assert (await bob.post(f"/users/{carl_id}/remove")).status_code == 404
    assert (await bob.post(f"/users/{carl_id}/role", {"role": "owner"})).status_code == 404
    assert (await bob.client.get(f"/keys/{acme_key['id']}/revoke")).status_code == 404
    assert (await bob.post(f"/keys/{acme_key['id']}/revoke")).status_code == 404
    assert (await bob.client.get("/usage?tenant=acme")).status_code == 404
    assert (await api_users(dash, "alice"))["carl@acme.test"]["role"] == "agent"
    assert (await api_keys(dash, "alice"))[0]["revoked_at"] is None


# -- users ---------------------------------------------------------------------------------


async def test_an_owner_adds_a_user_changes_the_role_and_removes_the_user(
    dash: Dashboard,
) -> None:
    alice = await dash.browser("alice")
    page = (await alice.client.get("/users")).text
    assert "carl@acme.test" in page and "bob@globex.test" not in page
    added = await alice.post(
        "/users",
        {"email": "Dora@Acme.test", "name": "Dora", "role": "member", "password": PASSWORD},
    )
    assert added.status_code == 303 and added.headers["location"] == "/users?done=added"
    dora = (await api_users(dash, "alice"))["dora@acme.test"]
    assert dora["role"] == "member" and dora["name"] == "Dora"
    await dash.api.login("dora@acme.test")

    assert (await alice.post(f"/users/{dora['id']}/role", {"role": "agent"})).status_code == 303
    assert (await api_users(dash, "alice"))["dora@acme.test"]["role"] == "agent"

    confirm = await alice.client.get(f"/users/{dora['id']}/remove")
    assert confirm.status_code == 200 and "Remove dora@acme.test?" in confirm.text
    assert (await api_users(dash, "alice"))["dora@acme.test"]  # asking changed nothing
    removed = await alice.post(f"/users/{dora['id']}/remove")
    assert removed.status_code == 303 and removed.headers["location"] == "/users?done=removed"
    assert "dora@acme.test" not in await api_users(dash, "alice")
    assert "dora@acme.test" not in (await alice.client.get("/users")).text


async def test_a_generated_password_is_shown_once(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    answer = await alice.post("/users", {"email": "eve@acme.test", "role": "agent"})
    assert answer.status_code == 200
    (password,) = NEW_PASSWORD.findall(answer.text)
    assert answer.text.count(password) == 1
    await dash.api.login("eve@acme.test", password)
    assert (await api_users(dash, "alice"))["eve@acme.test"]["role"] == "agent"
    assert password not in (await alice.client.get("/users")).text


async def test_bad_user_input_shows_the_form_again_and_changes_nothing(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    before = await api_users(dash, "alice")
    bad_email = await alice.post("/users", {"email": "not-an-email", "name": "N", "role": "member"})
    assert bad_email.status_code == 400
    assert field_error(bad_email.text, "email") == "is not an email address"
    assert 'value="not-an-email"' in bad_email.text and 'value="N"' in bad_email.text
    short = await alice.post(
        "/users", {"email": "fay@acme.test", "role": "member", "password": "short-pw"}
    )
    assert short.status_code == 400
    assert field_error(short.text, "password") == "must be at least 10 characters"
    assert "short-pw" not in short.text
    bad_role = await alice.post("/users", {"email": "gil@acme.test", "role": "king"})
    assert bad_role.status_code == 400 and field_error(bad_role.text, "role")
    taken = await alice.post("/users", {"email": "bob@globex.test", "role": "member"})
    assert taken.status_code == 409
    assert "An account with this email exists" in taken.text
    assert await api_users(dash, "alice") == before
    carl_id = before["carl@acme.test"]["id"]
    wrong = await alice.post(f"/users/{carl_id}/role", {"role": "boss"})
    assert wrong.status_code == 400 and field_error(wrong.text, f"role-{carl_id}")
    assert (await api_users(dash, "alice"))["carl@acme.test"]["role"] == "agent"


async def test_an_owner_cannot_remove_themselves(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    alice_id = (await api_users(dash, "alice"))["alice@acme.test"]["id"]
    users = (await alice.client.get("/users")).text
    assert f'href="/users/{alice_id}/remove"' not in users
    refused = await alice.post(f"/users/{alice_id}/remove")
    assert refused.status_code == 409
    assert "You cannot remove yourself from the tenant" in refused.text
    assert "alice@acme.test" in await api_users(dash, "alice")


# -- API keys ---------------------------------------------------------------------------


async def test_a_new_key_is_shown_once_works_and_stops_working_when_revoked(
    dash: Dashboard,
) -> None:
    alice = await dash.browser("alice")
    form = {
        "csrf_token": alice.csrf,
        "name": "billing worker",
        "scopes": ["jobs:read", "jobs:write"],
    }
    answer = await alice.client.post("/keys", data=form, headers={"Origin": ORIGIN})
    assert answer.status_code == 200
    (secret,) = NEW_KEY.findall(answer.text)
    assert answer.text.count(secret) == 1
    (key,) = await api_keys(dash, "alice")
    assert key["name"] == "billing worker" and key["scopes"] == ["jobs:read", "jobs:write"]
    listing = (await alice.client.get("/keys")).text
    assert secret not in listing and f"cvk_{key['prefix']}_" in listing
    jobs = await dash.api.client.get("/api/v1/jobs", headers={"X-API-Key": secret})
    assert jobs.status_code == 200

    confirm = await alice.client.get(f"/keys/{key['id']}/revoke")
    assert confirm.status_code == 200 and "Revoke the key billing worker?" in confirm.text
    assert (await dash.api.client.get("/api/v1/jobs", headers={"X-API-Key": secret})).is_success
    revoked = await alice.post(f"/keys/{key['id']}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/keys?done=revoked"
    after = await dash.api.client.get("/api/v1/jobs", headers={"X-API-Key": secret})
    assert after.status_code == 401
    assert (await api_keys(dash, "alice"))[0]["revoked_at"] is not None
    row = (await alice.client.get("/keys")).text.split(f'id="key-{key["id"]}"')[1]
    assert "revoked" in row.split("</tr>")[0]


async def test_bad_key_input_shows_the_form_again_and_creates_nothing(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    no_scope = await alice.post("/keys", {"name": "reader"})
    assert no_scope.status_code == 400
    assert field_error(no_scope.text, "scopes") == "must name at least one scope"
    assert 'value="reader"' in no_scope.text
    unknown = await alice.post("/keys", {"name": "reader", "scopes": "root"})
    assert unknown.status_code == 400 and "unknown scope" in field_error(unknown.text, "scopes")
    nameless = await alice.post("/keys", {"name": "  ", "scopes": "jobs:read"})
    assert nameless.status_code == 400 and field_error(nameless.text, "name")
    too_long = await alice.post("/keys", {"name": "k" * 201, "scopes": "jobs:read"})
    assert too_long.status_code == 400 and field_error(too_long.text, "name")
    assert await api_keys(dash, "alice") == []
    assert not NEW_KEY.search(no_scope.text + unknown.text + nameless.text + too_long.text)


# -- tenants ------------------------------------------------------------------------------


async def test_an_admin_creates_suspends_activates_and_deletes_a_tenant(dash: Dashboard) -> None:
    admin = await dash.browser("admin")
    created = await admin.post("/tenants", {"id": "initech", "name": "Initech"})
    assert created.status_code == 303 and created.headers["location"] == "/tenants?done=created"
    assert (await api_tenant(dash, "initech") or {})["name"] == "Initech"
    dash.pass_time(2)  # the session's memberships are read again
    listing = (await admin.client.get("/tenants?done=created")).text
    assert 'id="tenant-initech"' in listing and "you are one of its owners" in listing
    assert '<option value="initech"' in listing  # the tenant switcher offers it

    assert (await admin.post("/tenants/initech/suspend")).status_code == 303
    assert (await api_tenant(dash, "initech") or {})["status"] == "suspended"
    assert (await admin.post("/tenants/initech/activate")).status_code == 303
    assert (await api_tenant(dash, "initech") or {})["status"] == "active"

    confirm = await admin.client.get("/tenants/initech/delete")
    assert confirm.status_code == 200 and "Type <code>initech</code> to confirm" in confirm.text
    wrong = await admin.post("/tenants/initech/delete", {"confirm": "initec"})
    assert wrong.status_code == 400
    assert field_error(wrong.text, "confirm") == "type initech to confirm"
    assert await api_tenant(dash, "initech") is not None
    deleted = await admin.post("/tenants/initech/delete", {"confirm": "initech"})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/tenants?done=deleted"
    assert await api_tenant(dash, "initech") is None
    assert (await admin.post("/tenants/initech/suspend")).status_code == 404


async def test_a_suspended_tenant_is_refused_until_activated(dash: Dashboard) -> None:
    admin = await dash.browser("admin")
    bob = await dash.browser("bob")
    assert (await admin.post("/tenants/globex/suspend")).status_code == 303
    assert (await dash.api.call("GET", "/api/v1/jobs", "bob")).status_code == 403
    dash.pass_time(2)
    assert (await bob.client.get("/jobs")).status_code == 303  # sent to sign in
    assert (await admin.post("/tenants/globex/activate")).status_code == 303
    assert (await dash.api.call("GET", "/api/v1/jobs", "bob")).status_code == 200


async def test_bad_tenant_input_shows_the_form_again(dash: Dashboard) -> None:
    admin = await dash.browser("admin")
    bad_id = await admin.post("/tenants", {"id": "Not Valid", "name": "X"})
    assert bad_id.status_code == 400
    assert field_error(bad_id.text, "id") == "must be 2-63 lowercase letters, digits or dashes"
    assert 'value="Not Valid"' in bad_id.text
    no_name = await admin.post("/tenants", {"id": "hooli", "name": ""})
    assert no_name.status_code == 400 and field_error(no_name.text, "name")
    taken = await admin.post("/tenants", {"id": "acme", "name": "Acme again"})
    assert taken.status_code == 409 and 'class="alert alert-error"' in taken.text
    assert await api_tenant(dash, "hooli") is None
    assert (await api_tenant(dash, "acme") or {})["name"] == "Acme"


async def test_an_admin_cannot_suspend_or_delete_the_tenant_they_are_viewing(
    dash: Dashboard,
) -> None:
    admin = await dash.browser("admin")
    viewing = re.search(
        r'id="tenant-([a-z0-9-]+)">\s*<td class="mono">\S+ <span class="pill">viewing',
        (await admin.client.get("/tenants")).text,
    )
    assert viewing
    tenant = viewing.group(1)
    assert (await admin.post(f"/tenants/{tenant}/suspend")).status_code == 409
    assert (await admin.client.get(f"/tenants/{tenant}/delete")).status_code == 409
    refused = await admin.post(f"/tenants/{tenant}/delete", {"confirm": tenant})
    assert refused.status_code == 409
    assert (await api_tenant(dash, tenant) or {})["status"] == "active"
    assert (await admin.client.get("/jobs")).status_code == 200


# -- usage ----------------------------------------------------------------------------------


def shown_usage(html: str) -> dict[str, str]:
    """The numbers of the usage page by their element id (the exact value if it has one)."""
    found = re.findall(r'id="usage-([a-z-]+)"(?: data-value="([^"]*)")?>([^<]*)<', html)
    return {name: value or text for name, value, text in found}


async def test_usage_shows_what_the_api_answers(dash: Dashboard) -> None:
    for _ in range(3):
        await dash.enqueue("alice", queue="mail")
    await dash.finish("acme", "mail")
    await dash.finish("acme", "mail", failed=True)
    await dash.enqueue("bob", queue="mail")
    alice = await dash.browser("alice")
    for period, days in (("24h", 1), ("7d", 7), ("30d", 30)):
        page = await alice.client.get(f"/usage?period={period}")
        assert page.status_code == 200
        shown = shown_usage(page.text)
        until = dash.server.now()
        since = quote((until - timedelta(days=days)).isoformat())
        expected = await dash.api.call(
            "GET",
            f"/api/v1/tenants/acme/usage?since={since}&until={quote(until.isoformat())}",
            "alice",
        )
        usage = expected.json()
        assert usage["jobs_by_state"] == {"available": 1, "completed": 1, "discarded": 1}
        for state in ("scheduled", "available", "running", "completed", "discarded"):
            assert shown[state] == str(usage["jobs_by_state"].get(state, 0)), (period, state)
        assert shown["total"] == "3"
        assert shown["storage"] == str(usage["storage_bytes"])
        assert float(shown["run-seconds"]) == pytest.approx(usage["run_seconds"])
        assert f'<option value="{period}" selected>' in page.text
    assert page.text.count('class="fill-') == 7


async def test_usage_of_another_tenant_is_for_platform_admins(dash: Dashboard) -> None:
    await dash.enqueue("bob", queue="mail")
    admin = await dash.browser("admin")
    alice = await dash.browser("alice")
    globex = await admin.client.get("/usage?tenant=globex&period=24h")
    assert globex.status_code == 200 and "Usage of globex" in globex.text
    assert shown_usage(globex.text)["available"] == "1"
    assert (await alice.client.get("/usage?tenant=globex")).status_code == 404
    assert (await alice.client.get("/usage?tenant=acme")).status_code == 200
    assert (await admin.client.get("/usage?tenant=nowhere")).status_code == 404
    bad = await alice.client.get("/usage?period=1y")
    assert bad.status_code == 400 and "Period: must be one of 24h, 7d, 30d" in bad.text


# -- forms from elsewhere -------------------------------------------------------------------


async def test_admin_forms_without_the_csrf_token_change_nothing(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    admin = await dash.browser("admin")
    await alice.post("/keys", {"name": "kept", "scopes": "jobs:read"})
    (key,) = await api_keys(dash, "alice")
    users = await api_users(dash, "alice")
    carl_id = users["carl@acme.test"]["id"]
    forms = [
        (alice, "/users", {"email": "mallory@acme.test", "role": "owner", "password": PASSWORD}),
        (alice, f"/users/{carl_id}/role", {"role": "owner"}),
        (alice, f"/users/{carl_id}/remove", {}),
        (alice, "/keys", {"name": "stolen", "scopes": "admin"}),
        (alice, f"/keys/{key['id']}/revoke", {}),
        (admin, "/tenants", {"id": "evil", "name": "Evil"}),
        (admin, "/tenants/globex/suspend", {}),
        (admin, "/tenants/globex/delete", {"confirm": "globex"}),
    ]
    for browser, path, data in forms:
        for token, headers in (
            ("", {}),
            ("0" * 64, {}),
            (browser.csrf, {"Origin": "https://evil.example"}),
        ):
            response = await browser.client.post(
                path, data={**data, "csrf_token": token}, headers={"Origin": ORIGIN, **headers}
            )
            assert response.status_code == 403, (path, token, headers)
    assert await api_users(dash, "alice") == users
    assert await api_keys(dash, "alice") == [key]
    assert await api_tenant(dash, "evil") is None
    assert (await api_tenant(dash, "globex") or {})["status"] == "active"


async def test_a_platform_admin_sees_usage_where_it_is_not_an_owner(dash: Dashboard) -> None:
    admin_id = (await api_users(dash, "alice"))[ADMIN_EMAIL]["id"]
    demoted = await dash.api.call(
        "PATCH", f"/api/v1/users/{admin_id}", "alice", json={"role": "member"}
    )
    assert demoted.status_code == 200
    admin = await dash.browser("admin")
    await admin.post("/tenant", {"tenant": "acme"})
    assert (await admin.client.get("/users")).status_code == 403  # not an owner here
    usage = await admin.client.get("/usage?tenant=globex")
    assert usage.status_code == 200 and 'href="/usage"' in usage.text
