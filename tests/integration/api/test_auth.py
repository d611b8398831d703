"""Sign-in, token rotation and reuse detection, expiry, revocation, lockout, and
secrets that never show up in logs or responses after they were created."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from conveyor.domain.jobs import utcnow
from tests.integration.api.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, Api

pytestmark = pytest.mark.anyio

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


async def _session(api: Api, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> dict:
    response = await api.client.post(LOGIN, json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(session: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


async def test_refresh_rotates_and_reuse_ends_the_whole_session(api: Api) -> None:
    first = await _session(api)
    second = (await api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = await api.client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200

    reused = await api.client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert "already used" in reused.json()["detail"]
    # the thief's reuse revoked the family: the legitimate latest token is dead too
    latest = await api.client.post(REFRESH, json={"refresh_token": third.json()["refresh_token"]})
    assert latest.status_code == 401
    # another session of the same user is not affected
    other = await _session(api)
    assert (
        await api.client.post(REFRESH, json={"refresh_token": other["refresh_token"]})
    ).status_code == 200


async def test_expired_tokens_are_refused(api: Api) -> None:
    real_clock = api.server.store.clock
    api.server.store.clock = lambda: utcnow() - timedelta(days=31)
    try:
        old = await _session(api)
    finally:
        api.server.store.clock = real_clock
    me = await api.client.get("/api/v1/auth/me", headers=_bearer(old))
    assert me.status_code == 401
    assert "expired" in me.json()["detail"]
    assert me.headers["www-authenticate"] == "Bearer"
    refreshed = await api.client.post(REFRESH, json={"refresh_token": old["refresh_token"]})
    assert refreshed.status_code == 401


async def test_password_change_ends_every_session(api: Api) -> None:
    one, two = await _session(api), await _session(api)
    body = {"current_password": ADMIN_PASSWORD, "new_password": "a brand new password"}
    changed = await api.client.post("/api/v1/auth/password", json=body, headers=_bearer(one))
    assert changed.status_code == 204
    for session in (one, two):
        assert (
            await api.client.get("/api/v1/auth/me", headers=_bearer(session))
        ).status_code == 401
        refresh = await api.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
        assert refresh.status_code == 401
    assert (
        await api.client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    ).status_code == 401
    await _session(api, password="a brand new password")


async def test_wrong_current_password_changes_nothing(api: Api) -> None:
    session = await _session(api)
    body = {"current_password": "not it at all", "new_password": "a brand new password"}
    response = await api.client.post("/api/v1/auth/password", json=body, headers=_bearer(session))
    assert response.status_code == 403
    await _session(api)


async def test_logout_ends_the_session(api: Api) -> None:
    session = await _session(api)
    out = await api.client.post(
        "/api/v1/auth/logout", json={"refresh_token": session["refresh_token"]}
    )
    assert out.status_code == 204
    again = await api.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    assert again.status_code == 401


async def test_repeated_failures_lock_the_account_for_a_while(api: Api) -> None:
    for _ in range(5):
        wrong = await api.client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": "guess"})
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "wrong email or password"
    locked = await api.client.post(LOGIN, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 30
    real_clock = api.server.store.clock
    api.server.store.clock = lambda: utcnow() + timedelta(minutes=1)
    try:
        await _session(api)
    finally:
        api.server.store.clock = real_clock


async def test_an_unknown_email_answers_like_a_wrong_password(api: Api) -> None:
    response = await api.client.post(LOGIN, json={"email": "nobody@example.com", "password": "x"})
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong email or password"


async def test_api_keys_work_until_revoked_and_are_shown_once(personas: Api) -> None:
    created = await personas.call(
        "POST", "/api/v1/api-keys", "alice", json={"name": "ci", "scopes": ["jobs:read"]}
    )
    assert created.status_code == 201
    raw, key_id = created.json()["key"], created.json()["api_key"]["id"]
    as_key = {"X-API-Key": raw}
    assert (await personas.client.get("/api/v1/jobs", headers=as_key)).status_code == 200
    # jobs:read only: creating is forbidden
    denied = await personas.client.post("/api/v1/jobs", json={"task": "t"}, headers=as_key)
    assert denied.status_code == 403
    listed = await personas.call("GET", "/api/v1/api-keys", "alice")
    assert raw not in listed.text
    assert listed.json()[0]["last_used_at"] is not None
    revoked = await personas.call("DELETE", f"/api/v1/api-keys/{key_id}", "alice")
    assert revoked.json()["revoked_at"] is not None
    after = await personas.client.get("/api/v1/jobs", headers=as_key)
    assert after.status_code == 401
    bearer = await personas.client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {raw}"})
    assert bearer.status_code == 401


async def test_a_key_cannot_grant_more_than_its_creator_holds(personas: Api) -> None:
    key = await personas.call(
        "POST", "/api/v1/api-keys", "alice", json={"name": "w", "scopes": ["jobs:read", "admin"]}
    )
    as_key = {"X-API-Key": key.json()["key"]}
    escalate = await personas.client.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["jobs:write"]}, headers=as_key
    )
    assert escalate.status_code == 403


async def test_secrets_never_reach_logs_or_later_responses(
    personas: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = await _session(personas, "alice@acme.test", PASSWORD)
    key = await personas.call(
        "POST", "/api/v1/api-keys", "alice", json={"name": "k", "scopes": ["jobs:read"]}
    )
    invited = await personas.call(
        "POST", "/api/v1/users", "alice", json={"email": "dora@acme.test", "role": "member"}
    )
    generated = invited.json()["password"]
    assert generated
    await personas.client.post(REFRESH, json={"refresh_token": session["refresh_token"]})
    await personas.client.post(LOGIN, json={"email": "dora@acme.test", "password": "wrong guess"})
    secrets = [
        PASSWORD,
        generated,
        key.json()["key"],
        session["refresh_token"],
        session["access_token"],
    ]
    later = [
        await personas.call("GET", path, "alice")
        for path in ("/api/v1/users", "/api/v1/api-keys", "/api/v1/auth/me", "/api/v1/audit")
    ]
    text = caplog.text + "".join(r.text for r in later)
    for secret in secrets:
        assert secret not in text
    assert "argon2" not in text
