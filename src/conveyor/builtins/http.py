"""The built-in ``http`` task: one HTTP request per job, through the SSRF guard.

Payload: ``url`` (required), ``method`` (``GET``), ``headers`` (an object),
``body`` (a string sent as is, or any other JSON value sent as JSON),
``timeout`` (seconds, default 30, at most 300) and ``expected_status`` (a status
or a list of them; default: any 2xx). The result is ``{status, headers, body,
truncated, elapsed_ms}`` with the body's first 64 KiB. An unexpected status fails
the attempt (it is retried like any error); a bad payload or a refused address
discards the job at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.builtins.catalog import HTTP_TASK
from conveyor.builtins.payload import (
    Payload,
    only_fields,
    parsed,
    required_text,
    seconds,
    string_map,
    text,
)
from conveyor.domain.errors import InvalidInput
from conveyor.domain.outcomes import Discard
from conveyor.net.policy import OutboundPolicy, OutboundRefused

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

    from conveyor.net.guard import OutboundResponse

FIELDS = ("method", "url", "headers", "body", "timeout", "expected_status")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
MAX_BODY = 64 * 1024
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "etag",
    "last-modified",
)
"""The response headers a result keeps (all of them would bloat every stored result)."""


class UnexpectedStatus(Exception):
    """The response's status is not one the job expected (the attempt fails)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A validated ``http`` payload."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float
    expected: frozenset[int] | None
    """``None``: any 2xx."""


def parse_request(payload: Payload) -> HttpRequest:
    """The request an ``http`` payload describes; ``InvalidInput`` names a bad field."""
    only_fields(payload, FIELDS)
    url = required_text(payload, "url")
    method = (text(payload, "method", "GET") or "GET").upper()
    if method not in METHODS:
        raise InvalidInput("method", f"must be one of {', '.join(sorted(METHODS))}")
    headers = string_map(payload, "headers")
    body = _body(payload.get("body"), headers)
    return HttpRequest(
        method=method,
        url=url,
        headers=headers,
        body=body,
        timeout=seconds(payload, "timeout", DEFAULT_TIMEOUT, MAX_TIMEOUT),
        expected=_expected(payload.get("expected_status")),
    )


def _body(value: Any, headers: dict[str, str]) -> bytes | None:
    """A string is sent as UTF-8; another JSON value as JSON (with its content type)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _expected(value: Any) -> frozenset[int] | None:
    if value is None:
        return None
    statuses = value if isinstance(value, list) else [value]
    if not statuses or not all(_is_status(s) for s in statuses):
        raise InvalidInput("expected_status", "must be a status (100-599) or a list of them")
    return frozenset(statuses)


def _is_status(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def check_status(response: OutboundResponse, expected: frozenset[int] | None) -> None:
    """Raise ``UnexpectedStatus`` unless the status is expected (default: any 2xx)."""
    status = response.status
    if (expected is None and 200 <= status < 300) or (expected and status in expected):
        return
    wanted = "a 2xx status" if expected is None else _listed(sorted(expected))
    message = f"expected {wanted}, got {status}"
    if 300 <= status < 400:
        location = response.headers.get("location", "none")
        message += f" (redirects are not followed; location: {location})"
    elif excerpt := response.text()[:200].strip():
        message += f": {excerpt}"
    raise UnexpectedStatus(message)


def _listed(statuses: Iterable[int]) -> str:
    names = [str(s) for s in statuses]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def result_of(response: OutboundResponse) -> dict[str, Any]:
    """What the job stores: the status, a few headers, the capped body, the time taken."""
    return {
        "status": response.status,
        "headers": {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers},
        "body": response.text(),
        "truncated": response.truncated,
        "elapsed_ms": round(response.elapsed * 1000, 1),
    }


class HttpTask:
    """The ``http`` task's handler, with the policy its calls go through.

    ``policy`` can be widened while the app runs (``serve`` adds its settings'
    allowlist); ``resolver`` answers host names (tests pass a stub).
    """

    def __init__(
        self, policy: OutboundPolicy | None = None, resolver: AbstractResolver | None = None
    ) -> None:
        self.policy = policy or OutboundPolicy()
        self.resolver = resolver

    async def run(self, **payload: Any) -> dict[str, Any]:
        """Make the request the payload describes and return what came back."""
        request = parsed(HTTP_TASK, parse_request, payload)
        # Imported here: aiohttp takes ~0.4 s to import, paid only by workers using it.
        from conveyor.net.guard import OutboundClient

        client = OutboundClient(self.policy, resolver=self.resolver, max_body=MAX_BODY)
        try:
            response = await client.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                time_limit=request.timeout,
            )
        except (OutboundRefused, InvalidInput) as exc:
            raise Discard(exc.message) from None
        check_status(response, request.expected)
        return result_of(response)
