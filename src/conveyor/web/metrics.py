"""HTTP latency per route, for the server's Prometheus metrics (:mod:`conveyor.metrics`)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.metrics import Metrics
from conveyor.web.middleware import StatusRecorder


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
        recorder = StatusRecorder(send)
        try:
            await self.app(scope, receive, recorder)
        finally:
            self.metrics.http_seconds.labels(
                scope["method"], _route_of(scope), str(recorder.status)
            ).observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    """The route template with its router prefix (``/api/v1/jobs/{job_id}``).

    An included router's route knows only its own part of the path, so the prefix is
    what remains of the request path after that part, filled in, is cut off its end.
    """
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "unmatched"
    try:
        filled = str(template).format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return str(template)
    path = str(scope.get("path", ""))
    return (
        path[: len(path) - len(filled)] + str(template) if path.endswith(filled) else str(template)
    )
