"""Prometheus metrics: HTTP latency per route, and job counts read from the database
at scrape time (so every node reports the same truth, without multiprocess gauges)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.store.accounts_protocol import AccountStore
from conveyor.store.protocol import Store


class Metrics:
    """The server's metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_seconds = Histogram(
            "conveyor_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.jobs = Gauge(
            "conveyor_jobs",
            "Jobs by tenant, queue and state.",
            ["tenant", "queue", "state"],
            registry=self.registry,
        )

    async def render(self, store: Store, accounts: AccountStore) -> bytes:
        """The text exposition, with job counts read now."""
        self.jobs.clear()
        for tenant in await accounts.list_tenants():
            counts = await store.count_jobs(tenant.id)
            for (queue, state), count in counts.items():
                self.jobs.labels(tenant.id, queue, str(state)).set(count)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every HTTP request, labelled by its route template (not the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and observe how long it took."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.http_seconds.labels(
                scope["method"], _route_of(scope), str(status)
            ).observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
