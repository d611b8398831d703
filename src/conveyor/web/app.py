"""The ASGI application: routers, problem handlers, middleware, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from conveyor import __version__
from conveyor.domain.hooks import parse_networks
from conveyor.server import Server
from conveyor.web.dashboard.mount import install_dashboard
from conveyor.web.metrics import MetricsMiddleware
from conveyor.web.middleware import AuditTrail, BodyLimit, RateLimit
from conveyor.web.problems import PROBLEM_RESPONSES, install_problem_handlers
from conveyor.web.routes import (
    accounts,
    amqp,
    auth,
    health,
    hook_receiver,
    hooks,
    jobs,
    live,
    mail,
    queues,
    schedules,
    tasks,
    webhooks,
)
from conveyor.web.routes.hook_receiver import HookGuard, install_log_redaction

API_PREFIX = "/api/v1"

DESCRIPTION = """Durable jobs on SQLite or PostgreSQL: create them, watch them, steer them.

Sign in with **Authorize** (email and password), or send an API key as
`X-API-Key`. Errors are RFC 9457 problem+json naming the field at fault.
"""


def create_app(
    server: Server, on_start: Callable[[Server], Awaitable[None]] | None = None
) -> FastAPI:
    """The API for ``server``. Starting the app starts the server unless it already
    runs (then calls ``on_start``), and stopping the app stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        owned = not server.started
        if owned:
            await server.start()
        if on_start is not None:
            await on_start(server)
        try:
            yield
        finally:
            if owned:
                await server.stop()

    app = FastAPI(
        title="Conveyor",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url="/api/redoc",
        lifespan=lifespan,
    )
    app.state.server = server
    install_problem_handlers(app)
    # Routes match in order and most requests are for jobs, so the job routes come
    # first: no other route's path overlaps theirs, and a job request is spared about
    # twenty failed matches (the OpenAPI lists them first; its content is the same).
    app.include_router(jobs.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    app.include_router(health.router)
    app.include_router(hook_receiver.router)
    install_log_redaction()
    app.include_router(hooks.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    for module in (auth, queues, tasks, schedules, accounts, live, webhooks, amqp, mail):
        app.include_router(module.router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    install_dashboard(app)
    settings = server.settings
    app.add_middleware(AuditTrail, record=lambda *args: server.audit.record(*args))
    app.add_middleware(
        RateLimit, per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        HookGuard,
        per_minute=settings.rate_limit_per_minute,
        burst=settings.rate_limit_burst,
        trusted=parse_networks(settings.trusted_proxies),
    )
    app.add_middleware(MetricsMiddleware, metrics=server.metrics)
    return app
