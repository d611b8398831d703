"""Who is calling: a bearer access token (a signed-in user) or an API key.

Both ``Authorization: Bearer <token or key>`` and ``X-API-Key: <key>`` work; the
OpenAPI page's *Authorize* button signs in with a password (OAuth2 password flow).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.hooks import sender_ip
from conveyor.server import Server
from conveyor.services.accounts import AccountService
from conveyor.services.auth import Authenticator, Unauthenticated
from conveyor.services.jobs import JobService
from conveyor.services.schedules import ScheduleService
from conveyor.web.dashboard.session import cookie_principal

PRINCIPAL_KEY = "conveyor.principal"
COOKIE_SESSION_KEY = "conveyor.cookie_session"
"""Set on a stream request let in by the dashboard's session cookie."""
API_KEY_PREFIX = "cvk_"
QUERY_CREDENTIALS = frozenset({"token", "api_key"})
"""Query parameters that carry a credential (for clients that cannot send headers)."""

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def server_of(request: Request) -> Server:
    """The running server this app belongs to."""
    server: Server = request.app.state.server
    return server


def client_address(request: Request) -> str:
    """The client's address: the peer, or the client a trusted proxy forwarded for."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return sender_ip(peer, forwarded, server_of(request).trusted_proxies)


async def current_principal(
    request: Request,
    bearer: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The principal behind the request's credentials, or 401."""
    principal = await principal_for(server_of(request).auth, api_key or bearer)
    request.scope[PRINCIPAL_KEY] = principal
    return principal


async def principal_for(auth: Authenticator, credential: str | None) -> Principal:
    """The principal behind an access token or API key; ``Unauthenticated`` if none."""
    if not credential:
        raise Unauthenticated("sign in: send a bearer token or an X-API-Key header")
    if credential.startswith(API_KEY_PREFIX):
        return await auth.principal_from_key(credential)
    return await auth.principal_from_token(credential)


def redact_credentials(scope: MutableMapping[str, Any]) -> None:
    """Blank ``?token=`` and ``?api_key=`` in the request's query string, so the access
    log (which prints the query string) never shows a credential."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if any(name in QUERY_CREDENTIALS for name, _ in pairs):
        kept = [(n, "redacted" if n in QUERY_CREDENTIALS else v) for n, v in pairs]
        scope["query_string"] = urlencode(kept).encode("latin-1")


async def streaming_reader(
    request: Request,
    bearer: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
    token: Annotated[str | None, Query(description="An access token, for EventSource")] = None,
) -> Principal:
    """The caller of a stream, who must read jobs: as :func:`current_principal`, or
    ``?token=``, or the dashboard's session cookie (a browser's EventSource cannot
    send headers)."""
    redact_credentials(request.scope)
    signed_in = None if bearer or token or api_key else await cookie_principal(request)
    if signed_in is not None:
        request.scope[PRINCIPAL_KEY] = signed_in
        request.scope[COOKIE_SESSION_KEY] = True
    principal = signed_in or await current_principal(request, bearer or token, api_key)
    principal.require(Scope.JOBS_READ)
    return principal


def opened_by_cookie(request: Request) -> bool:
    """Whether :func:`streaming_reader` let this request in by its session cookie."""
    return bool(request.scope.get(COOKIE_SESSION_KEY))


async def session_unchanged(request: Request, principal: Principal) -> bool:
    """Whether the request's session cookie still speaks for ``principal`` with the
    same rights: ``False`` once it is signed out, removed, or its role changed (the
    pages' check, trusted for one second)."""
    return await cookie_principal(request) == principal


Caller = Annotated[Principal, Depends(current_principal)]


def holding(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``scope``."""

    async def check(principal: Caller) -> Principal:
        principal.require(scope)
        return principal

    return check


Reader = Annotated[Principal, Depends(holding(Scope.JOBS_READ))]
Writer = Annotated[Principal, Depends(holding(Scope.JOBS_WRITE))]
Owner = Annotated[Principal, Depends(holding(Scope.ADMIN))]


def accounts_service(request: Request) -> AccountService:
    """The account use cases."""
    return server_of(request).accounts


Accounts = Annotated[AccountService, Depends(accounts_service)]


async def reading_jobs(request: Request, principal: Reader) -> JobService:
    """Job use cases for a caller who may read jobs."""
    return server_of(request).jobs_for(principal)


async def writing_jobs(request: Request, principal: Writer) -> JobService:
    """Job use cases for a caller who may create and change jobs."""
    return server_of(request).jobs_for(principal)


ReadJobs = Annotated[JobService, Depends(reading_jobs)]
WriteJobs = Annotated[JobService, Depends(writing_jobs)]


async def job_writer(request: Request) -> JobService:
    """:func:`writing_jobs` called directly, not by dependency injection (for the hot
    job routes' quick path): the same credentials, checks and errors in the same order."""
    principal = await current_principal(request, await _bearer(request), await _api_key(request))
    principal.require(Scope.JOBS_WRITE)
    return server_of(request).jobs_for(principal)


async def schedule_service(request: Request, principal: Caller) -> ScheduleService:
    """Schedule use cases for the caller (each checks the caller's permissions)."""
    return server_of(request).schedules_for(principal)


Schedules = Annotated[ScheduleService, Depends(schedule_service)]
