"""RFC 9457 problem+json for every error, and the one map from errors to statuses.

Another tenant's resources are ``NotFound`` by the time they reach here, so they
answer 404, never 403. Nothing a client sends can produce a 500 with details:
an unexpected error is logged and answered with a bare 500 problem.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from conveyor.domain.errors import (
    Conflict,
    ConveyorError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SchemaOutdated,
    StoreUnavailable,
)
from conveyor.domain.hooks import redact_hook_paths
from conveyor.services.auth import LockedOut, Unauthenticated

log = logging.getLogger("conveyor.web")

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[ConveyorError], int]] = [
    (LockedOut, 429),
    (Unauthenticated, 401),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (PermissionDenied, 403),
    (StoreUnavailable, 503),
    (SchemaOutdated, 503),
]

_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


class ProblemOut(BaseModel):
    """An RFC 9457 problem: what went wrong, and the field at fault when there is one."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[dict[str, Any]] | None = None
    state: str | None = None
    """A job's current state, when a change was refused because of it (409)."""


_PROBLEM_SCHEMA = ProblemOut.model_json_schema(
    ref_template="#/components/schemas/{model}", mode="serialization"
)
PROBLEM_CONTENT: dict[str, Any] = {
    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}
}
"""The documented body of a problem answer (:func:`document_problem_schema` puts the
schema it refers to in the OpenAPI document)."""


def _documented(description: str) -> dict[str, Any]:
    # No "model": FastAPI would build a response validator for each answer of each
    # route, in every app, at its first request (it tripled the first requests' time),
    # and problem answers are written by the handlers here, never validated.
    return {"description": description, "content": PROBLEM_CONTENT}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("The body is not valid JSON"),
    401: _documented("Not signed in, or the credentials are wrong or expired"),
    403: _documented("Signed in, but not allowed"),
    404: _documented("No such resource (or it belongs to another tenant)"),
    409: _documented("The resource's state forbids this"),
    413: _documented("The request body is too large"),
    422: _documented("Invalid input; `field` names it"),
    429: _documented("Too many requests; see Retry-After"),
    503: _documented("The database is unavailable"),
}
"""Every API route may answer these, always as problem+json."""


def problem(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def status_of(error: ConveyorError) -> int:
    """The HTTP status an error of the error tree answers with."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def _conveyor_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConveyorError)  # noqa: S101 - registered for this type only
    status = status_of(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, LockedOut):
        headers["Retry-After"] = str(int(exc.retry_after))
    field = exc.field if isinstance(exc, InvalidInput) else None
    return problem(status, exc.message, field=field, headers=headers or None)


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    field = ".".join(loc) or "body"
    detail = f"{field}: {first.get('msg', 'is not valid')}"
    listed = [
        {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "problem": e.get("msg")}
        for e in errors[:20]
    ]
    return problem(422, detail, field=field, errors=listed)


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, str(exc.detail), headers=headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    route = request.scope.get("route")
    where = getattr(route, "path", None) or redact_hook_paths(request.url.path)
    log.exception("unexpected error on %s %s", request.method, where, exc_info=exc)
    return problem(500, "an unexpected error happened; it was logged")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error as problem+json, and document the problem's schema."""
    app.add_exception_handler(ConveyorError, _conveyor_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    document_problem_schema(app)


def document_problem_schema(app: FastAPI) -> None:
    """Put :class:`ProblemOut` in the app's OpenAPI components: the problem answers
    refer to it, but as no route declares it as a model, FastAPI would leave it out."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's, built again only when the routes change
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ProblemOut", copy.deepcopy(_PROBLEM_SCHEMA))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way
