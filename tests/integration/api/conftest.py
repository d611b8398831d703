"""The API in-process (httpx's ASGI transport) on a real store, with personas.

Alice owns tenant ``acme``; Carl is an ``agent`` there; Bob owns tenant ``globex``.
The platform admin owns ``default``. Each test gets a fresh database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from conveyor.server import Server
from conveyor.settings import Settings
from conveyor.web.app import create_app

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "correct horse battery"


def server_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test server: cheap Argon2, no rate limit unless asked."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "sqlite_synchronous": "NORMAL",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "admin_email": ADMIN_EMAIL,
        "admin_password": SecretStr(ADMIN_PASSWORD),
        "rate_limit_per_minute": 0,
        "sign_in_failures_per_minute": 0,
        "rescue_interval": 60.0,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Api:
    """A client of the in-process API, with helpers to sign in as someone."""

    client: httpx.AsyncClient
    server: Server
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def login(
        self, email: str, password: str = PASSWORD, tenant: str | None = None
    ) -> dict[str, str]:
        """Sign in and return the Authorization header."""
        body = {"email": email, "password": password, "tenant": tenant}
        response = await self.client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def admin(self) -> dict[str, str]:
        """The platform admin's header."""
        return await self.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    async def call(
        self, method: str, path: str, who: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A request as a persona set up by :func:`personas` (or anonymous)."""
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers.update(self.headers[who])
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def api(migrated_url: str) -> AsyncIterator[Api]:
    """A started server on a fresh database and a client for it."""
    server = Server(server_settings(migrated_url))
    await server.start()
    app = create_app(server)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://conveyor.test"
        ) as client:
            yield Api(client, server)
    finally:
        await server.stop()


async def make_personas(api: Api) -> Api:
    """Tenants acme (Alice owner, Carl agent) and globex (Bob owner)."""
    admin = await api.admin()
    api.headers["admin"] = admin
    for tenant in ("acme", "globex"):
        response = await api.client.post(
            "/api/v1/tenants", json={"id": tenant, "name": tenant.title()}, headers=admin
        )
        assert response.status_code == 201, response.text
    for email, tenant, role in (
        ("alice@acme.test", "acme", "owner"),
        ("carl@acme.test", "acme", "agent"),
        ("bob@globex.test", "globex", "owner"),
    ):
        tenant_admin = await api.login(ADMIN_EMAIL, ADMIN_PASSWORD, tenant)
        body = {"email": email, "role": role, "password": PASSWORD}
        response = await api.client.post("/api/v1/users", json=body, headers=tenant_admin)
        assert response.status_code == 201, response.text
    api.headers["alice"] = await api.login("alice@acme.test")
    api.headers["carl"] = await api.login("carl@acme.test")
    api.headers["bob"] = await api.login("bob@globex.test")
    return api


@pytest.fixture
async def personas(api: Api) -> Api:
    """The API with Alice, Carl, Bob and the admin signed in."""
    return await make_personas(api)
