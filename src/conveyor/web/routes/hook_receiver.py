"""``/hooks/{token}``: where senders POST (or PUT) to an incoming hook. No sign-in: the
token in the URL names the hook. Outside ``/api/v1``; rate-limited per sender address
by :class:`HookGuard`. The token is a credential: HookGuard redacts the path of the
answers it sends, and :func:`install_log_redaction` the log lines of the rest (a 500 is
sent outside every middleware).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.domain.hooks import (
    REDACTED_HOOK_PATH,
    BadSignature,
    IpNetwork,
    UnsupportedBody,
    redact_hook_paths,
    sender_ip,
)
from conveyor.services.hooks import IncomingRequest
from conveyor.web.auth import server_of
from conveyor.web.middleware import RateLimit, send_problem
from conveyor.web.problems import PROBLEM_CONTENT, PROBLEM_RESPONSES, problem
from conveyor.web.schemas_hooks import RECEIVE_PATH, ReceivedOut

router = APIRouter(tags=["incoming hooks"])

MAX_TOKEN = 128
REDACTED_PATH = REDACTED_HOOK_PATH
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "conveyor.web")
"""The loggers whose lines may name a request's path."""
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "A redelivery: the first receipt", "model": ReceivedOut},
    401: {
        "description": "The signature is missing, malformed, expired or wrong",
        "content": PROBLEM_CONTENT,
    },
    415: {
        "description": "The hook enqueues a task and the body is neither JSON nor UTF-8",
        "content": PROBLEM_CONTENT,
    },
}
ANSWERS.update({code: PROBLEM_RESPONSES[code] for code in (404, 413, 422, 429, 503)})
ROUTE: dict[str, Any] = {
    "summary": "Send a request to an incoming hook",
    "status_code": 202,
    "response_model": ReceivedOut,
    "response_description": "Stored (and enqueued, if the hook says so)",
    "responses": ANSWERS,
}


@router.post(RECEIVE_PATH + "{token}", **ROUTE)
@router.put(RECEIVE_PATH + "{token}", **ROUTE)
async def receive(token: str, request: Request) -> Response:
    """Store the request verbatim (body, headers, sender address, time), after its
    signature is checked; answered only once it is committed. A redelivery (same
    delivery id) stores nothing and answers 200 with the first receipt."""
    if len(token) > MAX_TOKEN:
        return problem(404, "no such hook (the URL is wrong, or the hook is disabled)")
    receiver = server_of(request).hook_receiver()
    hook = await receiver.find(token)
    incoming = IncomingRequest(
        method=request.method,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
        body=await request.body(),
        peer=request.client.host if request.client else None,
    )
    try:
        received = await receiver.accept(hook, incoming)
    except BadSignature as exc:
        return problem(401, exc.message)
    except UnsupportedBody as exc:
        return problem(415, exc.message)
    status = 200 if received.duplicate else 202
    return JSONResponse(ReceivedOut.of(received).model_dump(), status_code=status)


class HookGuard(RateLimit):
    """In front of the hooks' URLs: the API's token bucket, one per sender address, and
    the path shown as ``/hooks/redacted`` by the time the access log writes it."""

    def __init__(
        self, app: ASGIApp, per_minute: int, burst: int, trusted: Sequence[IpNetwork] = ()
    ) -> None:
        super().__init__(app, per_minute, burst)
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let a hook request through, or answer 429 with ``Retry-After``."""
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(RECEIVE_PATH):
            await self.app(scope, receive, send)
            return

        async def redacting(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope["path"] = REDACTED_PATH
            await send(message)

        wait = self.buckets.take("h:" + self._sender(scope), time.monotonic())
        if wait > 0:
            headers = {"Retry-After": str(math.ceil(wait))}
            detail = "too many requests: slow down"
            await send_problem(redacting, 429, "Too many requests", detail, headers)
            return
        await self.app(scope, receive, redacting)

    def _sender(self, scope: Scope) -> str:
        client = scope.get("client")
        forwarded = [
            v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-forwarded-for"
        ]
        return sender_ip(client[0] if client else None, forwarded, self.trusted)


class HookPathRedactor(logging.Filter):
    """Rewrites ``/hooks/<token>`` to ``/hooks/redacted`` in a log record's message and
    arguments (keeping the arguments' shape: uvicorn's access formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drop it."""
        if isinstance(record.msg, str):
            record.msg = redact_hook_paths(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(arg) for key, arg in record.args.items()}
        return True


def _redacted(arg: object) -> object:
    return redact_hook_paths(arg) if isinstance(arg, str) else arg


def install_log_redaction() -> None:
    """Put one :class:`HookPathRedactor` on each logger that may name a request's path
    (again and again is harmless: it is added once)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HookPathRedactor) for f in logger.filters):
            logger.addFilter(HookPathRedactor())
