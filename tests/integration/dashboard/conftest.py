"""The dashboard in-process (httpx's ASGI transport), one cookie jar per persona.

Reuses the API's fixtures: Alice owns ``acme``, Carl is an agent there, Bob owns
``globex``; the admin belongs to every tenant.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conveyor.domain.jobs import ErrorInfo, Job
from conveyor.domain.outcomes import Completed, Discarded, decide
from conveyor.domain.retry import Backoff
from conveyor.server import Server
from conveyor.web.app import create_app
from conveyor.web.dashboard.mount import PAGES
from conveyor.web.dashboard.routing import DashboardRoute
from tests.integration.api.conftest import (  # noqa: F401  (fixtures)
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    Api,
    api,
    make_personas,
    personas,
)

ORIGIN = "http://conveyor.test"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
EMAILS = {
    "alice": "alice@acme.test",
    "carl": "carl@acme.test",
    "bob": "bob@globex.test",
    "admin": ADMIN_EMAIL,
}


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = TOKEN.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Browser:
    """One person's cookie jar on the dashboard."""

    client: httpx.AsyncClient
    csrf: str = ""

    async def sign_in(
        self, email: str, password: str = PASSWORD, tenant: str = ""
    ) -> httpx.Response:
        """Fill in and send the sign-in form (as a browser would, with its Origin)."""
        form = await self.client.get("/login")
        data = {"csrf_token": csrf_of(form.text), "email": email, "password": password}
        data |= {"tenant": tenant, "next": "/"}
        response = await self.client.post("/login", data=data, headers={"Origin": ORIGIN})
        if response.status_code == 303:
            page = await self.client.get("/jobs")
            self.csrf = csrf_of(page.text)
        return response

    async def post(
        self, path: str, data: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A form POST with this session's CSRF token and this site's Origin."""
        headers = {"Origin": ORIGIN, **kwargs.pop("headers", {})}
        body = {"csrf_token": self.csrf, **(data or {})}
        return await self.client.post(path, data=body, headers=headers, **kwargs)


@dataclass
class Dashboard:
    """The API with personas, and a browser per persona on the dashboard."""

    api: Api
    server: Server
    browsers: dict[str, Browser] = field(default_factory=dict)
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _later: float = 0.0

    def pass_time(self, seconds: float) -> None:
        """Move the dashboard sessions' clock on (past the second a session is trusted)."""
        self._later += seconds

    def anonymous(self) -> Browser:
        """A browser that has not signed in."""
        app = create_app(self.server)
        app.state.dashboard_sessions.clock = lambda: time.monotonic() + self._later
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1))
        client = httpx.AsyncClient(transport=transport, base_url=ORIGIN)
        self._clients.append(client)
        return Browser(client)

    async def browser(self, who: str) -> Browser:
        """``who`` signed in on the dashboard (once)."""
        if who not in self.browsers:
            browser = self.anonymous()
            password = ADMIN_PASSWORD if who == "admin" else PASSWORD
            response = await browser.sign_in(EMAILS[who], password)
            assert response.status_code == 303, response.text
            self.browsers[who] = browser
        return self.browsers[who]

    async def enqueue(self, who: str, task: str = "report", **fields: Any) -> int:
        """A job created through the API as ``who``; its id."""
        body = {"task": task, "payload": {"n": 1}, **fields}
        response = await self.api.call("POST", "/api/v1/jobs", who, json=body)
        assert response.status_code == 201, response.text
        job_id: int = response.json()["id"]
        return job_id

    async def finish(
        self, tenant: str, queue: str, failed: bool = False, error: ErrorInfo | None = None
    ) -> Job:
        """Claim the next job of ``queue`` and end it: completed, or discarded (with
        ``error``, by default a ``ValueError``)."""
        store = self.server.store
        (claimed,) = await store.claim(tenant, queue, "worker-test", 1, 300)
        error = error or ErrorInfo(
            "ValueError", "bad input", 'Traceback:\n  File "x.py"\nValueError'
        )
        outcome = Discarded(error) if failed else Completed({"ok": True})
        finish = decide(
            outcome,
            job_id=claimed.id,
            attempt=claimed.attempt,
            max_attempts=claimed.max_attempts,
            backoff=Backoff(base=1, factor=2, cap=10, jitter=0),
            now=store.clock(),
        )
        assert await store.finish([finish]) == [True]
        return claimed

    async def close(self) -> None:
        """Close every browser's client."""
        for client in self._clients:
            await client.aclose()


@pytest.fixture(params=["sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The pages are the same on either store: they run on SQLite (the dashboard's
    own queries run on both in ``test_dashboard_queries.py``)."""
    return str(request.param)


@pytest.fixture
async def dash(personas: Api) -> AsyncIterator[Dashboard]:  # noqa: F811
    """The dashboard of a fresh server with the personas."""
    dashboard = Dashboard(personas, personas.server)
    try:
        yield dashboard
    finally:
        await dashboard.close()


def dashboard_routes() -> list[tuple[str, str]]:
    """Every dashboard route as (method, path with sample parameters)."""
    found = []
    for route in (r for module in PAGES for r in module.router.routes):
        if isinstance(route, DashboardRoute):
            path = re.sub(r"\{name\}", "default", route.path)
            path = re.sub(r"\{[a-z_]+\}", "1", path)
            found += [(method, path) for method in sorted(route.methods or ())]
    return found
