"""Adds the dashboard to the app: its pages and its static files."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from conveyor.web.dashboard import (
    pages_admin,
    pages_auth,
    pages_hooks,
    pages_jobs,
    pages_overview,
    pages_queues,
    pages_schedules,
    pages_webhooks,
)
from conveyor.web.dashboard.render import HERE
from conveyor.web.dashboard.session import Sessions

STATIC_MAX_AGE = 365 * 86400
PAGES = (
    pages_auth,
    pages_overview,
    pages_jobs,
    pages_schedules,
    pages_queues,
    pages_webhooks,
    pages_hooks,
    pages_admin,
)
"""The modules whose routers make up the dashboard."""


class CachedStatic(StaticFiles):
    """Static files cached for a year: their URLs carry the version."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a file with a long ``Cache-Control``."""

        async def send_cached(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((b"cache-control", f"public, max-age={STATIC_MAX_AGE}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_cached)  # type: ignore[arg-type]


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` beside the API."""
    app.state.dashboard_sessions = Sessions(app.state.server)
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/static", CachedStatic(directory=HERE / "static"), name="dashboard-static")
