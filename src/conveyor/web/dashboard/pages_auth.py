"""Sign in, sign out and switch tenants."""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from conveyor.domain.errors import ConveyorError, PermissionDenied
from conveyor.services.auth import LockedOut
from conveyor.web.auth import client_address
from conveyor.web.dashboard.access import CheckedForm, SignedIn
from conveyor.web.dashboard.render import page
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    TENANT_COOKIE,
    CsrfRejected,
    Sessions,
    new_login_token,
    same_origin,
    sessions_of,
)

router = dashboard_router()

LOGIN_TOKEN_SECONDS = 3600
SESSION_ENDED = "Your session has ended: sign in again."


def local_path(target: object) -> str:
    """``target`` if it is a path on this site, else ``/`` (no open redirects)."""
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//"):
        return target if "\\" not in target else "/"
    return "/"


def _cookie(response: Response, sessions: Sessions, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=sessions.secure_cookies,
        path="/",
    )


def _login_page(
    request: Request, error: str = "", email: str = "", status_code: int = 200
) -> Response:
    token = new_login_token()
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        login_token=token,
        error=error,
        email=email,
        next=local_path(request.query_params.get("next")),
    )
    _cookie(response, sessions_of(request), LOGIN_CSRF_COOKIE, token, LOGIN_TOKEN_SECONDS)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The sign-in form (``?ended=1``: says that the session has ended)."""
    ended = request.query_params.get("ended") == "1"
    return _login_page(request, error=SESSION_ENDED if ended else "")


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password and open a session; a wrong one shows the form again."""
    form = await request.form()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    fresh = isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)
    if not same_origin(request, request.app.state.server.settings.public_url) or not fresh:
        raise CsrfRejected("the sign-in form expired or came from another site: reload it")
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    tenant = str(form.get("tenant", "")).strip() or None
    sessions = sessions_of(request)
    try:
        session_token = await sessions.open(email, password, tenant, client_address(request))
    except LockedOut as exc:
        refused = _login_page(request, error=exc.message, email=email[:254], status_code=429)
        refused.headers["Retry-After"] = str(int(exc.retry_after))
        return refused
    except ConveyorError as exc:
        return _login_page(request, error=exc.message, email=email[:254], status_code=401)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await sessions.close(previous)  # one session per browser
    response = RedirectResponse(local_path(form.get("next")), status_code=303)
    lifetime = int(request.app.state.server.settings.refresh_token_days * 86400)
    _cookie(response, sessions, SESSION_COOKIE, session_token, lifetime)
    response.delete_cookie(TENANT_COOKIE, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, form: CheckedForm) -> Response:
    """End the session in the store and forget the cookies."""
    await sessions_of(request).close(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(TENANT_COOKIE, path="/")
    return response


@router.post("/tenant")
async def switch_tenant(request: Request, viewer: SignedIn, form: CheckedForm) -> Response:
    """Show another of the viewer's tenants (the session stays the same)."""
    tenant = str(form.get("tenant", ""))
    if tenant not in viewer.tenants:
        raise PermissionDenied(f"you do not belong to tenant {tenant!r}")
    response = RedirectResponse("/", status_code=303)
    lifetime = int(request.app.state.server.settings.refresh_token_days * 86400)
    _cookie(response, sessions_of(request), TENANT_COOKIE, tenant, lifetime)
    return response
