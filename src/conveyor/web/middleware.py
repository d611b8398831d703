"""Pure ASGI middleware: body size limit (413), rate limit (429), audit log.

Written as plain ASGI rather than ``BaseHTTPMiddleware``, which breaks
contextvars and streaming responses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.domain.accounts import Principal
from conveyor.domain.ratelimit import TokenBuckets
from conveyor.web.auth import PRINCIPAL_KEY
from conveyor.web.problems import PROBLEM_JSON

log = logging.getLogger("conveyor.web")

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def send_problem(
    send: Send, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Answer with a problem+json body straight from middleware."""
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    raw = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class StatusRecorder:
    """An ASGI ``send`` that passes messages on and remembers the response status."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        """Note the status of the response start, then send the message on."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies above ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what arrives."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, tracking)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        await send_problem(send, 413, "Request too large", detail)


class RateLimit:
    """A token bucket per credential (API key or token) or, without one, per address."""

    def __init__(self, app: ASGIApp, per_minute: int, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_minute, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the request through, or answer 429 with ``Retry-After``."""
        if scope["type"] != "http" or not self.buckets.enabled or not _is_api(scope):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(_caller_key(scope), time.monotonic())
        if wait > 0:
            detail = "too many requests: slow down"
            headers = {"Retry-After": str(math.ceil(wait))}
            await send_problem(send, 429, "Too many requests", detail, headers)
            return
        await self.app(scope, receive, send)


class AuditTrail:
    """Records every successful change made through the API in the audit log."""

    def __init__(self, app: ASGIApp, record: Callable[..., None]) -> None:
        self.app = app
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; if it changed something, write who, what and from where."""
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return
        recorder = StatusRecorder(send)
        await self.app(scope, receive, recorder)
        principal = scope.get(PRINCIPAL_KEY)
        if isinstance(principal, Principal) and recorder.status < 400:
            self._write(scope, principal, recorder.status)

    def _write(self, scope: Scope, principal: Principal, status: int) -> None:
        route = scope.get("route")
        action = getattr(route, "name", None) or "unknown"
        detail = {"method": scope["method"], "status": status, **scope.get("path_params", {})}
        client = scope.get("client")
        try:
            self.record(principal, action, scope["path"], detail, client[0] if client else None)
        except Exception:
            log.exception(
                "could not write the audit entry for %s %s", scope["method"], scope["path"]
            )


def _is_api(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/api/v1/")


def _caller_key(scope: Scope) -> str:
    headers = dict(scope["headers"])
    credential = headers.get(b"x-api-key") or headers.get(b"authorization")
    if credential:
        return "c:" + hashlib.sha256(credential).hexdigest()[:32]
    client = scope.get("client")
    return "a:" + (client[0] if client else "unknown")
