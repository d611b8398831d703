"""Who is calling: a bearer access token (a signed-in user) or an API key.

Both ``Authorization: Bearer <token or key>`` and ``X-API-Key: <key>`` work; the
OpenAPI page's *Authorize* button signs in with a password (OAuth2 password flow).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from conveyor.domain.accounts import Principal, Scope
from conveyor.server import Server
from conveyor.services.accounts import AccountService
from conveyor.services.auth import Unauthenticated
from conveyor.services.jobs import JobService
from conveyor.services.schedules import ScheduleService

PRINCIPAL_KEY = "conveyor.principal"
API_KEY_PREFIX = "cvk_"

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def server_of(request: Request) -> Server:
    """The running server this app belongs to."""
    server: Server = request.app.state.server
    return server


async def current_principal(
    request: Request,
    bearer: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The principal behind the request's credentials, or 401."""
    auth = server_of(request).auth
    credential = api_key or bearer
    if not credential:
        raise Unauthenticated("sign in: send a bearer token or an X-API-Key header")
    if credential.startswith(API_KEY_PREFIX):
        principal = await auth.principal_from_key(credential)
    else:
        principal = await auth.principal_from_token(credential)
    request.scope[PRINCIPAL_KEY] = principal
    return principal


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


async def schedule_service(request: Request, principal: Caller) -> ScheduleService:
    """Schedule use cases for the caller (each checks the caller's permissions)."""
    return server_of(request).schedules_for(principal)


Schedules = Annotated[ScheduleService, Depends(schedule_service)]
