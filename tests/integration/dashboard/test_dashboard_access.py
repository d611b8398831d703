"""Who reaches which dashboard page: sign-in, sign-out, CSRF, roles, tenants."""

from __future__ import annotations

import asyncio
from http.cookies import Morsel, SimpleCookie

import httpx
import pytest

from conveyor.domain.lifecycle import JobState
from conveyor.server import Server
from conveyor.web.app import create_app
from conveyor.web.dashboard.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    TENANT_COOKIE,
)
from conveyor.web.routes import live as live_routes
from tests.integration.api.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, server_settings
from tests.integration.dashboard.conftest import ORIGIN, Dashboard, csrf_of, dashboard_routes

pytestmark = pytest.mark.anyio


async def test_no_dashboard_page_is_reachable_without_signing_in(dash: Dashboard) -> None:
    visitor = dash.anonymous()
    routes = dashboard_routes()
    assert ("GET", "/") in routes and ("POST", "/jobs/1/retry") in routes
    for method, path in routes:
        if path == "/login":
            continue
        response = await visitor.client.request(method, path, headers={"Origin": ORIGIN})
        assert response.status_code == 303, (method, path, response.status_code)
        back = response.headers["location"]
        assert back == (f"/login?next={path}" if method == "GET" else "/login"), (method, path)


async def test_fragments_answer_401_to_the_page_script_when_signed_out(dash: Dashboard) -> None:
    visitor = dash.anonymous()
    response = await visitor.client.get("/fragments/jobs", headers={"X-Dashboard-Fragment": "1"})
    assert response.status_code == 401


async def test_signing_in_opens_the_overview(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    overview = await alice.client.get("/")
    assert overview.status_code == 200
    assert "Overview" in overview.text and "alice@acme.test" in overview.text
    cookie = next(c for c in alice.client.cookies.jar if c.name == SESSION_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")


def _set_cookie(response: httpx.Response, name: str) -> Morsel[str]:
    """The ``Set-Cookie`` of ``name`` in a response, parsed with its attributes."""
    for value in response.headers.get_list("set-cookie"):
        jar = SimpleCookie()
        jar.load(value)
        if name in jar:
            return jar[name]
    raise AssertionError(f"no Set-Cookie for {name}")


async def _sign_in_form(
    client: httpx.AsyncClient, origin: str, email: str, password: str
) -> tuple[httpx.Response, httpx.Response]:
    """The sign-in form's response and the response to sending it filled in."""
    form = await client.get("/login")
    data = {"csrf_token": csrf_of(form.text), "email": email, "password": password}
    return form, await client.post("/login", data=data, headers={"Origin": origin})


async def test_session_cookie_is_httponly_and_lax(dash: Dashboard) -> None:
    visitor = dash.anonymous()
    form, response = await _sign_in_form(visitor.client, ORIGIN, "alice@acme.test", PASSWORD)
    assert response.status_code == 303
    for cookie in (_set_cookie(form, LOGIN_CSRF_COOKIE), _set_cookie(response, SESSION_COOKIE)):
        assert cookie["httponly"] is True and cookie["samesite"].lower() == "lax", cookie
        assert cookie["path"] == "/" and not cookie["secure"], cookie  # the URL is http here


async def test_a_wrong_password_shows_the_form_again_with_an_error(dash: Dashboard) -> None:
    visitor = dash.anonymous()
    response = await visitor.sign_in("alice@acme.test", "not the password")
    assert response.status_code == 401
    assert "Wrong email or password" in response.text
    assert (await visitor.client.get("/jobs")).status_code == 303


async def test_sign_in_without_the_form_token_is_refused(dash: Dashboard) -> None:
    visitor = dash.anonymous()
    data = {"email": "alice@acme.test", "password": "correct horse battery"}
    response = await visitor.client.post("/login", data=data, headers={"Origin": ORIGIN})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_signing_out_ends_the_session_in_the_store(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    session = alice.client.cookies[SESSION_COOKIE]
    response = await alice.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    thief = dash.anonymous()
    thief.client.cookies.set(SESSION_COOKIE, session)
    assert (await thief.client.get("/jobs")).status_code == 303
    assert (await alice.client.get("/jobs")).status_code == 303


async def test_sign_out_is_a_post_with_the_csrf_token(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    assert (await alice.client.get("/logout")).status_code == 405
    refused = await alice.post("/logout", {"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await alice.client.get("/jobs")).status_code == 200


async def test_forms_without_the_right_csrf_token_change_nothing(dash: Dashboard) -> None:
    job_id = await dash.enqueue("alice", queue="mail")
    await dash.finish("acme", "mail", failed=True)
    alice = await dash.browser("alice")
    for data, headers in (
        ({"csrf_token": ""}, {}),
        ({"csrf_token": "0" * 64}, {}),
        ({}, {"Origin": "https://evil.example"}),
    ):
        response = await alice.post(f"/jobs/{job_id}/retry", data, headers=headers)
        assert response.status_code == 403, (data, headers)
        assert "Forbidden" in response.text
        response = await alice.post("/queues/mail/pause", data, headers=headers)
        assert response.status_code == 403
    jobs = dash.server.jobs_for(await dash.server.auth.principal_from_token(_token(dash, "alice")))
    assert (await jobs.get(job_id)).state is JobState.DISCARDED
    assert not [q for q in await jobs.queues() if q.paused]


async def test_every_form_of_the_dashboard_refuses_a_missing_or_wrong_csrf_token(
    dash: Dashboard,
) -> None:
    admin = await dash.browser("admin")
    posts = [path for method, path in dashboard_routes() if method == "POST"]
    assert "/jobs/1/retry" in posts and "/logout" in posts
    for path in posts:
        if path == "/login":
            continue  # checked against its own cookie (above)
        for token in ("", "0" * 64):
            response = await admin.post(path, {"csrf_token": token})
            assert response.status_code == 403, (path, token, response.status_code)
            assert "security token is missing or wrong" in response.text, path
    assert (await admin.client.get("/jobs")).status_code == 200  # still signed in


async def test_a_referer_from_this_site_stands_in_for_a_missing_origin(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    await dash.enqueue("alice", queue="mail")
    response = await alice.client.post(
        "/queues/mail/pause",
        data={"csrf_token": alice.csrf},
        headers={"Referer": f"{ORIGIN}/queues"},
    )
    assert response.status_code == 303
    no_source = await alice.client.post("/queues/mail/resume", data={"csrf_token": alice.csrf})
    assert no_source.status_code == 403


async def test_an_agent_sees_only_its_jobs_and_only_the_jobs_pages(dash: Dashboard) -> None:
    own = await dash.enqueue("alice", task="carl-task", assignee="carl@acme.test")
    other = await dash.enqueue("alice", task="alice-task")
    carl = await dash.browser("carl")
    listing = await carl.client.get("/jobs")
    assert f'id="job-{own}"' in listing.text and f'id="job-{other}"' not in listing.text
    assert 'href="/queues"' not in listing.text and 'href="/workers"' not in listing.text
    own_page = await carl.client.get(f"/jobs/{own}")
    assert own_page.status_code == 200
    assert "alice@acme.test" not in own_page.text  # who made it is not an agent's business
    assert (await carl.client.get(f"/jobs/{other}")).status_code == 404
    assert (await carl.client.get(f"/fragments/jobs/{other}")).status_code == 404
    home = await carl.client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/jobs"
    for page in ("/queues", "/workers", "/fragments/queues", "/fragments/workers"):
        assert (await carl.client.get(page)).status_code == 403, page
    assert ">Cancel<" not in (await carl.client.get(f"/jobs/{own}")).text
    assert (await carl.post(f"/jobs/{own}/cancel")).status_code == 403
    assert (await carl.post("/queues/default/pause")).status_code == 403
    jobs = dash.server.jobs_for(await dash.server.auth.principal_from_token(_token(dash, "alice")))
    assert (await jobs.get(own)).state is JobState.AVAILABLE
    assert not [q for q in await jobs.queues() if q.paused]


async def test_bob_cannot_open_alices_job(dash: Dashboard) -> None:
    job_id = await dash.enqueue("alice", task="acme-only")
    bob = await dash.browser("bob")
    assert (await bob.client.get(f"/jobs/{job_id}")).status_code == 404
    assert (await bob.post(f"/jobs/{job_id}/cancel")).status_code == 404
    assert "acme-only" not in (await bob.client.get("/jobs")).text
    assert "acme-only" not in (await bob.client.get("/jobs?q=acme")).text


async def test_the_tenant_switcher_shows_another_tenant(dash: Dashboard) -> None:
    await dash.enqueue("bob", task="globex-task")
    admin = await dash.browser("admin")
    first = await admin.client.get("/jobs")
    assert 'name="tenant"' in first.text and "globex" in first.text
    response = await admin.post("/tenant", {"tenant": "globex"})
    assert response.status_code == 303
    assert "globex-task" in (await admin.client.get("/jobs")).text
    assert (await admin.post("/tenant", {"tenant": "nowhere"})).status_code == 403


async def test_a_suspended_tenant_loses_access(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    assert (await alice.client.get("/jobs")).status_code == 200
    response = await dash.api.call("POST", "/api/v1/tenants/acme/suspend", "admin")
    assert response.status_code == 200, response.text
    dash.pass_time(1.1)  # sessions are trusted for one second
    refused = await alice.client.get("/jobs")
    assert refused.status_code == 303 and "ended=1" in refused.headers["location"]


def _token(dash: Dashboard, who: str) -> str:
    return dash.api.headers[who]["Authorization"].removeprefix("Bearer ")


async def test_cookies_are_secure_when_the_public_url_is_https(migrated_url: str) -> None:
    public = "https://jobs.example.com"
    server = Server(server_settings(migrated_url, public_url=public))
    await server.start()
    try:
        transport = httpx.ASGITransport(app=create_app(server))
        async with httpx.AsyncClient(transport=transport, base_url=public) as client:
            form, response = await _sign_in_form(client, public, ADMIN_EMAIL, ADMIN_PASSWORD)
            assert response.status_code == 303, response.text
            switched = await client.post(
                "/tenant",
                data={"csrf_token": csrf_of((await client.get("/jobs")).text), "tenant": "default"},
                headers={"Origin": public},
            )
    finally:
        await server.stop()
    sent = [(form, LOGIN_CSRF_COOKIE), (response, SESSION_COOKIE), (switched, TENANT_COOKIE)]
    for answer, name in sent:
        cookie = _set_cookie(answer, name)
        assert cookie["secure"] is True and cookie["httponly"] is True, name
        assert cookie["samesite"].lower() == "lax", name


async def test_sign_in_returns_only_to_pages_of_this_site(dash: Dashboard) -> None:
    for target, expected in (("/jobs?state=running", "/jobs?state=running"), ("//evil.test", "/")):
        visitor = dash.anonymous()
        form = await visitor.client.get(f"/login?next={target}")
        data = {"csrf_token": csrf_of(form.text), "email": "alice@acme.test"}
        data |= {"password": PASSWORD, "next": target}
        response = await visitor.client.post("/login", data=data, headers={"Origin": ORIGIN})
        assert response.headers["location"] == expected


async def test_a_changed_role_applies_and_a_removed_member_loses_access(dash: Dashboard) -> None:
    carl = await dash.browser("carl")
    assert (await carl.client.get("/queues")).status_code == 403
    users = (await dash.api.call("GET", "/api/v1/users", "alice")).json()
    carl_id = next(u["id"] for u in users if u["email"] == "carl@acme.test")
    changed = await dash.api.call(
        "PATCH", f"/api/v1/users/{carl_id}", "alice", json={"role": "member"}
    )
    assert changed.status_code == 200, changed.text
    dash.pass_time(1.1)  # sessions are trusted for one second
    assert (await carl.client.get("/queues")).status_code == 200
    removed = await dash.api.call("DELETE", f"/api/v1/users/{carl_id}", "alice")
    assert removed.status_code == 204, removed.text
    dash.pass_time(1.1)
    assert (await carl.client.get("/jobs")).status_code == 303


async def test_the_session_cookie_opens_only_the_event_stream_of_the_api(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    assert (await alice.client.get("/api/v1/jobs")).status_code == 401
    assert (await alice.client.post("/api/v1/jobs", json={"task": "x"})).status_code == 401
    forged = dash.anonymous()
    forged.client.cookies.set(SESSION_COOKIE, "crt_nothing.here")
    assert (await forged.client.get("/api/v1/events/stream")).status_code == 401


async def _open_stream(dash: Dashboard, who: str) -> asyncio.Task[httpx.Response]:
    """``who``'s dashboard event stream, once it is subscribed (the in-process client
    returns the response only when the stream ends)."""
    browser = await dash.browser(who)
    before = dash.server.live.subscribers
    stream = asyncio.create_task(browser.client.get("/api/v1/events/stream"))
    async with asyncio.timeout(5):
        while dash.server.live.subscribers == before:
            await asyncio.sleep(0.01)
    return stream


async def test_signing_out_ends_the_open_event_stream(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_routes, "SESSION_CHECK_SECONDS", 0.05)
    stream = await _open_stream(dash, "alice")
    assert not stream.done()
    assert (await (await dash.browser("alice")).post("/logout")).status_code == 303
    ended = await asyncio.wait_for(stream, 5)
    assert ended.status_code == 200 and ended.text.startswith(": connected")


async def test_a_removed_member_loses_the_open_event_stream(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_routes, "SESSION_CHECK_SECONDS", 0.05)
    stream = await _open_stream(dash, "carl")
    users = (await dash.api.call("GET", "/api/v1/users", "alice")).json()
    carl_id = next(u["id"] for u in users if u["email"] == "carl@acme.test")
    removed = await dash.api.call("DELETE", f"/api/v1/users/{carl_id}", "alice")
    assert removed.status_code == 204, removed.text
    dash.pass_time(1.1)  # sessions are trusted for one second
    await asyncio.wait_for(stream, 5)


async def test_an_agent_sees_no_other_persons_email_in_event_data(dash: Dashboard) -> None:
    own = await dash.enqueue("alice", task="carl-task", assignee="carl@acme.test")
    insert = (
        "INSERT INTO events (tenant_id, job_id, type, data, created_at) "
        "VALUES ('acme', :job_id, 'job.edited', :data, :now)"
    )
    data = '{"fields":["priority"],"from":"available","to":"available","by":"alice@acme.test"}'
    await dash.server.store.run_sql([(insert, {"job_id": own, "data": data, "now": 1.0e9})])
    carl_page = await (await dash.browser("carl")).client.get(f"/jobs/{own}")
    assert carl_page.status_code == 200
    assert "fields=" in carl_page.text and "alice@acme.test" not in carl_page.text
    alice_page = await (await dash.browser("alice")).client.get(f"/jobs/{own}")
    assert "by=alice@acme.test" in alice_page.text


async def test_signing_in_returns_to_the_page_and_its_query_string(dash: Dashboard) -> None:
    visitor = dash.anonymous()
    response = await visitor.client.get("/jobs?state=running&queue=mail")
    assert response.headers["location"] == "/login?next=/jobs%3Fstate%3Drunning%26queue%3Dmail"
    form = await visitor.client.get(response.headers["location"])
    assert 'value="/jobs?state=running&amp;queue=mail"' in form.text


async def test_signing_out_of_an_ended_session_never_returns_to_the_post_only_path(
    dash: Dashboard,
) -> None:
    alice = await dash.browser("alice")
    session = alice.client.cookies[SESSION_COOKIE]
    assert (await alice.post("/logout")).status_code == 303
    alice.client.cookies.set(SESSION_COOKIE, session)  # a second tab, still open
    again = await alice.post("/logout")
    assert again.status_code == 303 and again.headers["location"] == "/login?ended=1"
    assert (await alice.client.get(again.headers["location"])).status_code == 200


async def test_a_changed_role_ends_the_open_event_stream(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_routes, "SESSION_CHECK_SECONDS", 0.05)
    stream = await _open_stream(dash, "carl")
    users = (await dash.api.call("GET", "/api/v1/users", "alice")).json()
    carl_id = next(u["id"] for u in users if u["email"] == "carl@acme.test")
    path = f"/api/v1/users/{carl_id}"
    changed = await dash.api.call("PATCH", path, "alice", json={"role": "member"})
    assert changed.status_code == 200, changed.text
    dash.pass_time(1.1)  # sessions are trusted for one second
    await asyncio.wait_for(stream, 5)  # the browser reconnects with its new rights
