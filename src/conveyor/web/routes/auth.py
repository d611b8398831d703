"""``/api/v1/auth``: sign in, refresh, sign out, sign up, change password, who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from conveyor.services.auth import Session
from conveyor.web.auth import Accounts, Caller, client_address, server_of
from conveyor.web.schemas import (
    LoginIn,
    MeOut,
    PasswordIn,
    RefreshIn,
    SessionOut,
    SignupIn,
    UserOut,
)

router = APIRouter(prefix="/auth", tags=["auth"])


def _session(session: Session) -> SessionOut:
    return SessionOut(
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_in=session.expires_in,
        tenant=session.tenant_id,
    )


@router.post("/login", summary="Sign in")
async def login(body: LoginIn, request: Request) -> SessionOut:
    """Email and password for an access token (short-lived) and a refresh token.
    Repeated failures lock the account for a while, and too many failures from one
    address make it wait (429 with ``Retry-After``)."""
    auth = server_of(request).auth
    address = client_address(request)
    return _session(await auth.login(body.email, body.password, body.tenant, address))


@router.post("/token", summary="Sign in (OAuth2 password form)", include_in_schema=True)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    tenant: Annotated[str | None, Form(max_length=63)] = None,
) -> SessionOut:
    """The same as ``/login`` as a form, for the *Authorize* button of the API docs
    (``username`` is the email)."""
    auth = server_of(request).auth
    address = client_address(request)
    return _session(await auth.login(form.username, form.password, tenant, address))


@router.post("/refresh", summary="Rotate a refresh token")
async def refresh(body: RefreshIn, request: Request) -> SessionOut:
    """A new access token and a new refresh token; the old one stops working.
    Presenting a refresh token twice ends the whole session."""
    return _session(await server_of(request).auth.refresh(body.refresh_token))


@router.post("/logout", status_code=204, summary="Sign out")
async def logout(body: RefreshIn, request: Request) -> Response:
    """End the session of this refresh token."""
    await server_of(request).auth.logout(body.refresh_token)
    return Response(status_code=204)


@router.post("/signup", status_code=201, summary="Join a tenant that allows sign-up")
async def signup(body: SignupIn, accounts: Accounts) -> UserOut:
    """Create an account as a ``member`` of a tenant whose owners allow sign-up."""
    return UserOut.of(await accounts.sign_up(body.tenant, body.email, body.password, body.name))


@router.get("/me", summary="Who am I")
async def me(principal: Caller, accounts: Accounts) -> MeOut:
    """The signed-in user, its role here and its other tenants."""
    user, memberships = await accounts.me(principal)
    return MeOut(
        user=UserOut.of(user),
        tenant=principal.tenant_id,
        role=principal.role,
        tenants={m.tenant_id: m.role for m in memberships},
    )


@router.post("/password", status_code=204, summary="Change my password")
async def change_password(
    body: PasswordIn, principal: Caller, accounts: Accounts, request: Request
) -> Response:
    """Replace the password; every session of this account ends (sign in again)."""
    user, _ = await accounts.me(principal)
    new_hash = accounts.hash_new_password(body.new_password)
    await server_of(request).auth.change_password(user.id, body.current_password, new_hash)
    return Response(status_code=204)
