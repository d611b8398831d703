"""``/api/v1/tenants``, ``/users``, ``/api-keys`` and ``/audit``: who may use Conveyor."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime

from conveyor.domain.accounts import TenantStatus
from conveyor.domain.jobs import utcnow
from conveyor.web.auth import Accounts, Caller, server_of
from conveyor.web.routes.params import After, Limit
from conveyor.web.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    AuditOut,
    AuditPage,
    RoleIn,
    TenantIn,
    TenantOut,
    UsageOut,
    UserCreatedOut,
    UserIn,
    UserOut,
)

router = APIRouter()

TenantId = Annotated[str, Path(min_length=1, max_length=63)]
EntityId = Annotated[str, Path(min_length=1, max_length=64)]


# -- tenants (platform admins) -----------------------------------------------------


@router.post("/tenants", status_code=201, tags=["tenants"], summary="Create a tenant")
async def create_tenant(body: TenantIn, principal: Caller, accounts: Accounts) -> TenantOut:
    """A new tenant, usable at once (admins only); the creator becomes its owner."""
    return TenantOut.of(
        await accounts.create_tenant(principal, body.id, body.name, body.allow_signup)
    )


@router.get("/tenants", tags=["tenants"], summary="List tenants")
async def list_tenants(principal: Caller, accounts: Accounts) -> list[TenantOut]:
    """Every tenant for an admin, else the caller's own."""
    return [TenantOut.of(t) for t in await accounts.list_tenants(principal)]


@router.get("/tenants/{tenant_id}", tags=["tenants"], summary="Get a tenant")
async def get_tenant(tenant_id: TenantId, principal: Caller, accounts: Accounts) -> TenantOut:
    """One tenant the caller belongs to (or any, for an admin)."""
    return TenantOut.of(await accounts.get_tenant(principal, tenant_id))


@router.post("/tenants/{tenant_id}/suspend", tags=["tenants"], summary="Suspend a tenant")
async def suspend_tenant(tenant_id: TenantId, principal: Caller, accounts: Accounts) -> TenantOut:
    """Its requests are refused (403) and its jobs are not claimed until resumed."""
    return TenantOut.of(
        await accounts.set_tenant_status(principal, tenant_id, TenantStatus.SUSPENDED)
    )


@router.post("/tenants/{tenant_id}/resume", tags=["tenants"], summary="Resume a tenant")
async def resume_tenant(tenant_id: TenantId, principal: Caller, accounts: Accounts) -> TenantOut:
    """Serve the tenant again."""
    return TenantOut.of(await accounts.set_tenant_status(principal, tenant_id, TenantStatus.ACTIVE))


@router.delete("/tenants/{tenant_id}", status_code=204, tags=["tenants"], summary="Delete")
async def delete_tenant(tenant_id: TenantId, principal: Caller, accounts: Accounts) -> Response:
    """Remove a tenant and everything it owns (jobs, events, keys, memberships)."""
    await accounts.delete_tenant(principal, tenant_id)
    return Response(status_code=204)


@router.get("/tenants/{tenant_id}/usage", tags=["tenants"], summary="A tenant's usage")
async def tenant_usage(
    tenant_id: TenantId,
    principal: Caller,
    accounts: Accounts,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> UsageOut:
    """Jobs by state, run seconds and storage over a window (default: the last 30 days)."""
    end = until or utcnow()
    start = since or end - timedelta(days=30)
    return UsageOut.of(await accounts.usage(principal, tenant_id, start, end))


# -- users of the caller's tenant (owners) ---------------------------------------------


@router.get("/users", tags=["users"], summary="List users")
async def list_users(principal: Caller, accounts: Accounts) -> list[UserOut]:
    """This tenant's users with their roles."""
    return [UserOut.of(u, m) for u, m in await accounts.list_users(principal)]


@router.post("/users", status_code=201, tags=["users"], summary="Invite a user")
async def add_user(body: UserIn, principal: Caller, accounts: Accounts) -> UserCreatedOut:
    """Add a user to this tenant with a role; a new account without a password gets a
    generated one, shown only in this response."""
    user, membership, password = await accounts.add_user(
        principal, body.email, body.role, body.name, body.password
    )
    return UserCreatedOut(user=UserOut.of(user, membership), password=password)


@router.patch("/users/{user_id}", tags=["users"], summary="Change a user's role")
async def set_role(
    user_id: EntityId, body: RoleIn, principal: Caller, accounts: Accounts
) -> UserOut:
    """Make a user an ``owner``, ``member`` or ``agent`` of this tenant."""
    return UserOut.of(*await accounts.set_role(principal, user_id, body.role))


@router.delete("/users/{user_id}", status_code=204, tags=["users"], summary="Remove a user")
async def remove_user(user_id: EntityId, principal: Caller, accounts: Accounts) -> Response:
    """Take a user out of this tenant; its sessions here end."""
    await accounts.remove_user(principal, user_id)
    return Response(status_code=204)


# -- API keys (owners) --------------------------------------------------------------------


@router.post("/api-keys", status_code=201, tags=["api keys"], summary="Create an API key")
async def create_key(body: ApiKeyIn, principal: Caller, accounts: Accounts) -> ApiKeyCreatedOut:
    """A key for a program or worker. The key is shown only in this response."""
    key, raw = await accounts.create_key(principal, body.name, frozenset(body.scopes))
    return ApiKeyCreatedOut(api_key=ApiKeyOut.of(key), key=raw)


@router.get("/api-keys", tags=["api keys"], summary="List API keys")
async def list_keys(principal: Caller, accounts: Accounts) -> list[ApiKeyOut]:
    """This tenant's keys by prefix, with their scopes and last use."""
    return [ApiKeyOut.of(k) for k in await accounts.list_keys(principal)]


@router.delete("/api-keys/{key_id}", tags=["api keys"], summary="Revoke an API key")
async def revoke_key(key_id: EntityId, principal: Caller, accounts: Accounts) -> ApiKeyOut:
    """The key stops working at once."""
    return ApiKeyOut.of(await accounts.revoke_key(principal, key_id))


# -- audit log (owners and admins) ---------------------------------------------------------


@router.get("/audit", tags=["audit"], summary="The audit log")
async def audit_log(
    request: Request,
    principal: Caller,
    after: After = 0,
    limit: Limit = 100,
    since: Annotated[AwareDatetime | None, Query()] = None,
) -> AuditPage:
    """Every change made through the API in this tenant: who, what, when, from where."""
    entries = await server_of(request).audit.entries(principal, after, limit, since)
    cursor = entries[-1].id if entries else after
    return AuditPage(items=[AuditOut.of(e) for e in entries], next_cursor=cursor)
