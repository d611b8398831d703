"""A short path through FastAPI for the hot job routes (create one job, create many).

FastAPI answers a request by parsing the body with ``json.loads``, solving the
route's dependency tree (caller, scope, service: six levels, each reading the
query string, headers and cookies) and validating the parsed body in Python mode.
For a well-formed request that is most of the server's own time. A
:class:`QuickRoute` first tries its ``quick`` handler, which validates the raw
body in one call (``model_validate_json``) and signs the caller in directly; when
the request is anything but well-formed (no ``application/json`` body, a body
that does not validate, an odd header) the handler returns ``None`` before it has
done anything, and the route's ordinary FastAPI handler answers, exactly as it
always did: same checks in the same order, same problem+json naming the field.
The route's declared endpoint, dependencies and models still make its OpenAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import Message

QuickHandler = Callable[[Request], Awaitable[Response | None]]
"""Answers a well-formed request, or ``None`` to leave it to the ordinary handler."""

JSON_CONTENT_TYPE = "application/json"

Model = TypeVar("Model", bound=BaseModel)


class UnreadBody(Exception):
    """Reading the request body failed (the client left, the body is too large)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


async def json_body(request: Request, model: type[Model]) -> Model | None:
    """The request's ``application/json`` body as ``model``, or ``None`` when it is not
    exactly that (another content type, no body, invalid JSON, a field that does not
    validate): the ordinary handler then answers with the right problem."""
    if request.headers.get("content-type") != JSON_CONTENT_TYPE:
        return None
    try:
        body = await request.body()
    except Exception as exc:  # the ordinary handler turns it into its answer
        raise UnreadBody(exc) from exc
    if not body:
        return None
    try:
        return model.model_validate_json(body)
    except ValidationError:
        return None


def _failing_again(request: Request, error: Exception) -> Request:
    """A request on the same scope whose body fails to read with ``error`` again."""

    async def receive() -> Message:
        raise error

    return Request(request.scope, receive)


class QuickRoute(APIRoute):
    """An API route that tries :attr:`quick` before FastAPI's ordinary handler.

    Dependency overrides (tests may set them) always take the ordinary handler.
    """

    quick: QuickHandler

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The ordinary handler, behind the quick one."""
        ordinary = super().get_route_handler()
        quick = type(self).quick

        async def handle(request: Request) -> Response:
            if getattr(request.scope.get("app"), "dependency_overrides", None):
                return await ordinary(request)
            try:
                answer = await quick(request)
            except UnreadBody as failed:
                return await ordinary(_failing_again(request, failed.error))
            return answer if answer is not None else await ordinary(request)

        return handle


def quick_route(quick: QuickHandler) -> type[APIRoute]:
    """A :class:`QuickRoute` class answering well-formed requests with ``quick``."""
    return type(f"Quick_{quick.__name__}", (QuickRoute,), {"quick": staticmethod(quick)})
