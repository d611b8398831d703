"""Dashboard routes: errors become HTML pages (or a redirect to sign in), never
problem+json, so the API's error handling stays as it is."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from conveyor.domain.errors import Conflict, ConveyorError, NotFound, PermissionDenied
from conveyor.web.dashboard.render import page
from conveyor.web.dashboard.session import CsrfRejected, SignInRequired

FRAGMENT_HEADER = "x-dashboard-fragment"
TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 409: "Conflict"}


def _status_of(error: ConveyorError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, PermissionDenied):
        return 403
    return 409 if isinstance(error, Conflict) else 400


def _sign_in(request: Request, error: SignInRequired) -> Response:
    if request.headers.get(FRAGMENT_HEADER):
        return Response(status_code=401)  # the page's script reloads into /login
    query = {"next": _return_to(request)} if request.method in ("GET", "HEAD") else {}
    if error.reason:
        query["ended"] = "1"
    target = "/login?" + urlencode(query, safe="/") if query else "/login"
    return RedirectResponse(target, status_code=303)


def _return_to(request: Request) -> str:
    """The page to come back to after signing in: the path and query string of a GET
    (a form's POST-only path would answer 405 to the browser's GET)."""
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


def _error_page(request: Request, status: int, detail: str) -> Response:
    viewer = getattr(request.state, "viewer", None)
    return page(
        request, "error.html", viewer, status, title=TITLES.get(status, "Error"), detail=detail
    )


class DashboardRoute(APIRoute):
    """A route whose errors become HTML pages (or a redirect to sign in)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped to turn errors into pages."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                return _sign_in(request, exc)
            except CsrfRejected as exc:
                return page(request, "error.html", None, 403, title="Forbidden", detail=str(exc))
            except RequestValidationError:
                return _error_page(request, 404, "There is no such page.")
            except ConveyorError as exc:
                return _error_page(request, _status_of(exc), exc.message)

        return handle


def dashboard_router() -> APIRouter:
    """A router for dashboard pages (left out of the OpenAPI schema)."""
    return APIRouter(route_class=DashboardRoute, include_in_schema=False)
