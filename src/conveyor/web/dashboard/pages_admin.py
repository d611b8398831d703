"""``/users``, ``/keys``, ``/tenants`` and ``/usage``: the tenant's people and API
keys, every tenant for platform admins, and a tenant's usage.

Every change goes through :class:`AccountService` with the viewer's principal and the
API's request models, so the pages allow exactly what the API allows. A form with bad
input is shown again with the problem next to its field; nothing changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Path, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from conveyor.domain.accounts import (
    ApiKey,
    Membership,
    Role,
    Scope,
    TenantStatus,
    TenantUsage,
    User,
    parse_scopes,
)
from conveyor.domain.errors import Conflict, InvalidInput, NotFound
from conveyor.domain.lifecycle import JobState
from conveyor.services.accounts import AccountService
from conveyor.web.dashboard.access import CheckedForm, Overseer, Owner, PlatformAdmin
from conveyor.web.dashboard.forms import FORM, done_message, validated
from conveyor.web.dashboard.render import page
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import Viewer
from conveyor.web.schemas import ApiKeyIn, RoleIn, TenantIn, UserIn

router = dashboard_router()

TenantId = Annotated[str, Path(min_length=1, max_length=63)]
EntityId = Annotated[str, Path(min_length=1, max_length=64)]
PERIODS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "7d"
BAR_WIDTH = 240
DONE = {
    "added": "The user was added.",
    "role": "The role was changed.",
    "removed": "The user was removed from the tenant.",
    "revoked": "The key was revoked: it no longer works.",
    "created": "The tenant was created; you are one of its owners.",
    "suspended": "The tenant was suspended.",
    "activated": "The tenant is active again.",
    "deleted": "The tenant and everything it owned were deleted.",
}


def accounts_of(request: Request) -> AccountService:
    """The account use cases (each checks the principal it is given)."""
    service: AccountService = request.app.state.server.accounts
    return service


def problem_of(
    error: InvalidInput | Conflict, field: str | None = None
) -> tuple[int, dict[str, str]]:
    """A refused form's status and its problems by field (``field`` overrides the name)."""
    if isinstance(error, InvalidInput):
        return 400, {field or error.field: error.problem}
    return 409, {field or FORM: error.message}


def text_fields(form: FormData, *names: str) -> dict[str, str]:
    """Some text fields of a form (never a password), to fill the form in again."""
    return {name: str(form.get(name) or "") for name in names}


def confirm_page(
    request: Request, viewer: Viewer, section: str, status: int = 200, **context: Any
) -> Response:
    """A page that asks before something is removed for good."""
    values: dict[str, Any] = {"errors": {}, "typed": None, **context}
    return page(request, "_admin_confirm.html", viewer, status, section=section, **values)


# -- users ---------------------------------------------------------------------------


async def users_page(request: Request, viewer: Viewer, status: int = 200, **extra: Any) -> Response:
    """The tenant's users, the invite form and whatever ``extra`` adds."""
    members = await accounts_of(request).list_users(viewer.principal)
    context: dict[str, Any] = {
        "members": sorted(members, key=lambda pair: pair[0].email),
        "roles": list(Role),
        "errors": {},
        "values": {"role": Role.MEMBER.value},
        "done": done_message(request, DONE),
        **extra,
    }
    return page(request, "users.html", viewer, status, section="users", **context)


async def member(request: Request, viewer: Viewer, user_id: str) -> tuple[User, Membership]:
    """One user of the viewer's tenant with its membership; ``NotFound`` otherwise."""
    for user, membership in await accounts_of(request).list_users(viewer.principal):
        if user.id == user_id:
            return user, membership
    raise NotFound(f"user {user_id} does not exist")


@router.get("/users")
async def user_list(request: Request, viewer: Owner) -> Response:
    """The tenant's users with their roles, and a form to add one."""
    return await users_page(request, viewer)


@router.post("/users")
async def add_user(request: Request, viewer: Owner, form: CheckedForm) -> Response:
    """Add a user with a role; a generated password is shown on this answer only."""
    values = text_fields(form, "email", "name", "role")
    try:
        body = validated(UserIn, {**values, "password": str(form.get("password") or "") or None})
        user, _, password = await accounts_of(request).add_user(
            viewer.principal, body.email, body.role, body.name, body.password
        )
    except (InvalidInput, Conflict) as exc:
        status, errors = problem_of(exc)
        return await users_page(request, viewer, status, errors=errors, values=values)
    if password is None:
        return RedirectResponse("/users?done=added", status_code=303)
    return await users_page(request, viewer, added=user, password=password)


@router.post("/users/{user_id}/role")
async def change_role(
    request: Request, viewer: Owner, form: CheckedForm, user_id: EntityId
) -> Response:
    """Make a user an owner, member or agent of the tenant."""
    try:
        body = validated(RoleIn, {"role": str(form.get("role") or "")})
        await accounts_of(request).set_role(viewer.principal, user_id, body.role)
    except (InvalidInput, Conflict) as exc:
        status, errors = problem_of(exc, f"role:{user_id}")
        return await users_page(request, viewer, status, errors=errors)
    lost_access = user_id == viewer.principal.user_id and body.role is not Role.OWNER
    return RedirectResponse("/" if lost_access else "/users?done=role", status_code=303)


@router.get("/users/{user_id}/remove")
async def confirm_remove_user(request: Request, viewer: Owner, user_id: EntityId) -> Response:
    """Ask before taking a user out of the tenant."""
    user, _ = await member(request, viewer, user_id)
    return confirm_page(request, viewer, "users", **_removal(viewer, user))


@router.post("/users/{user_id}/remove")
async def remove_user(
    request: Request, viewer: Owner, form: CheckedForm, user_id: EntityId
) -> Response:
    """Take a user out of the tenant; its sessions there end."""
    try:
        await accounts_of(request).remove_user(viewer.principal, user_id)
    except Conflict as exc:
        user, _ = await member(request, viewer, user_id)
        status, errors = problem_of(exc)
        return confirm_page(
            request, viewer, "users", status, errors=errors, **_removal(viewer, user)
        )
    return RedirectResponse("/users?done=removed", status_code=303)


def _removal(viewer: Viewer, user: User) -> dict[str, Any]:
    return {
        "title": f"Remove {user.email}?",
        "question": f"{user.email} will no longer be able to use tenant {viewer.tenant}; "
        "their sessions there end at once. The account itself stays.",
        "action": f"/users/{user.id}/remove",
        "button": "Remove user",
        "back": "/users",
    }


# -- API keys ------------------------------------------------------------------------


async def keys_page(request: Request, viewer: Viewer, status: int = 200, **extra: Any) -> Response:
    """The tenant's keys, the form for a new one and whatever ``extra`` adds."""
    keys = await accounts_of(request).list_keys(viewer.principal)
    context: dict[str, Any] = {
        "keys": sorted(keys, key=lambda key: key.created_at, reverse=True),
        "scopes": [scope.value for scope in Scope],
        "errors": {},
        "values": {"name": "", "scopes": [Scope.JOBS_READ.value]},
        "done": done_message(request, DONE),
        **extra,
    }
    return page(request, "keys.html", viewer, status, section="keys", **context)


async def tenant_key(request: Request, viewer: Viewer, key_id: str) -> ApiKey:
    """One key of the viewer's tenant; ``NotFound`` otherwise."""
    for key in await accounts_of(request).list_keys(viewer.principal):
        if key.id == key_id:
            return key
    raise NotFound(f"API key {key_id} does not exist")


@router.get("/keys")
async def key_list(request: Request, viewer: Owner) -> Response:
    """The tenant's API keys by prefix, with scopes and last use, and a form for a new one."""
    return await keys_page(request, viewer)


@router.post("/keys")
async def create_key(request: Request, viewer: Owner, form: CheckedForm) -> Response:
    """A new key, shown on this answer only (as the API's create answer)."""
    chosen = [str(value) for value in form.getlist("scopes")]
    values: dict[str, Any] = {"name": str(form.get("name") or ""), "scopes": chosen}
    try:
        body = validated(ApiKeyIn, {"name": values["name"], "scopes": sorted(parse_scopes(chosen))})
        key, raw = await accounts_of(request).create_key(
            viewer.principal, body.name, frozenset(body.scopes)
        )
    except (InvalidInput, Conflict) as exc:
        status, errors = problem_of(exc)
        return await keys_page(request, viewer, status, errors=errors, values=values)
    return await keys_page(request, viewer, created=key, secret=raw)


@router.get("/keys/{key_id}/revoke")
async def confirm_revoke_key(request: Request, viewer: Owner, key_id: EntityId) -> Response:
    """Ask before revoking a key."""
    key = await tenant_key(request, viewer, key_id)
    return confirm_page(
        request,
        viewer,
        "keys",
        title=f"Revoke the key {key.name}?",
        question=f"Programs using the key {key.prefix}… stop being let in at once. "
        "A revoked key cannot be used again.",
        action=f"/keys/{key.id}/revoke",
        button="Revoke key",
        back="/keys",
    )


@router.post("/keys/{key_id}/revoke")
async def revoke_key(
    request: Request, viewer: Owner, form: CheckedForm, key_id: EntityId
) -> Response:
    """Revoke a key: it stops working at once."""
    await accounts_of(request).revoke_key(viewer.principal, key_id)
    return RedirectResponse("/keys?done=revoked", status_code=303)


# -- tenants (platform admins) -------------------------------------------------------


async def tenants_page(
    request: Request, viewer: Viewer, status: int = 200, **extra: Any
) -> Response:
    """Every tenant, the form for a new one and whatever ``extra`` adds."""
    tenants = await accounts_of(request).list_tenants(viewer.principal)
    context: dict[str, Any] = {
        "tenants": sorted(tenants, key=lambda tenant: tenant.id),
        "errors": {},
        "values": {},
        "done": done_message(request, DONE),
        **extra,
    }
    return page(request, "tenants.html", viewer, status, section="tenants", **context)


def not_viewed(viewer: Viewer, tenant_id: str) -> None:
    """Refuse to end the tenant the viewer's own session is in (it would sign them out)."""
    if tenant_id == viewer.tenant:
        raise Conflict("you are viewing this tenant: switch to another one first")


@router.get("/tenants")
async def tenant_list(request: Request, viewer: PlatformAdmin) -> Response:
    """Every tenant with its status, and a form to create one."""
    return await tenants_page(request, viewer)


@router.post("/tenants")
async def create_tenant(request: Request, viewer: PlatformAdmin, form: CheckedForm) -> Response:
    """A new tenant, active at once; the admin creating it becomes its owner."""
    values = text_fields(form, "id", "name")
    allow_signup = form.get("allow_signup") == "on"
    try:
        body = validated(TenantIn, {**values, "allow_signup": allow_signup})
        await accounts_of(request).create_tenant(
            viewer.principal, body.id, body.name, body.allow_signup
        )
    except (InvalidInput, Conflict) as exc:
        status, errors = problem_of(exc)
        values["allow_signup"] = "on" if allow_signup else ""
        return await tenants_page(request, viewer, status, errors=errors, values=values)
    return RedirectResponse("/tenants?done=created", status_code=303)


@router.post("/tenants/{tenant_id}/suspend")
async def suspend_tenant(
    request: Request, viewer: PlatformAdmin, form: CheckedForm, tenant_id: TenantId
) -> Response:
    """Refuse the tenant's requests and stop claiming its jobs."""
    not_viewed(viewer, tenant_id)
    await accounts_of(request).set_tenant_status(
        viewer.principal, tenant_id, TenantStatus.SUSPENDED
    )
    return RedirectResponse("/tenants?done=suspended", status_code=303)


@router.post("/tenants/{tenant_id}/activate")
async def activate_tenant(
    request: Request, viewer: PlatformAdmin, form: CheckedForm, tenant_id: TenantId
) -> Response:
    """Serve a suspended tenant again."""
    await accounts_of(request).set_tenant_status(viewer.principal, tenant_id, TenantStatus.ACTIVE)
    return RedirectResponse("/tenants?done=activated", status_code=303)


def _deletion(tenant_id: str) -> dict[str, Any]:
    return {
        "title": f"Delete tenant {tenant_id}?",
        "question": "Its jobs and their files, events, queues, schedules, webhooks, API keys, "
        "memberships and audit log are deleted for good. Type the tenant's id to confirm.",
        "action": f"/tenants/{tenant_id}/delete",
        "button": "Delete tenant",
        "back": "/tenants",
        "typed": tenant_id,
    }


@router.get("/tenants/{tenant_id}/delete")
async def confirm_delete_tenant(
    request: Request, viewer: PlatformAdmin, tenant_id: TenantId
) -> Response:
    """Ask for the tenant's id before deleting it."""
    tenant = await accounts_of(request).get_tenant(viewer.principal, tenant_id)
    not_viewed(viewer, tenant.id)
    return confirm_page(request, viewer, "tenants", **_deletion(tenant.id))


@router.post("/tenants/{tenant_id}/delete")
async def delete_tenant(
    request: Request, viewer: PlatformAdmin, form: CheckedForm, tenant_id: TenantId
) -> Response:
    """Delete a tenant and everything it owns, once its id was typed."""
    not_viewed(viewer, tenant_id)
    if form.get("confirm") != tenant_id:
        errors = {"confirm": f"type {tenant_id} to confirm"}
        return confirm_page(request, viewer, "tenants", 400, errors=errors, **_deletion(tenant_id))
    await accounts_of(request).delete_tenant(viewer.principal, tenant_id)
    return RedirectResponse("/tenants?done=deleted", status_code=303)


# -- usage ---------------------------------------------------------------------------


def usage_rows(usage: TenantUsage) -> list[tuple[str, int, float]]:
    """Each job state with its count and its bar's width (the largest fills the bar)."""
    counts = [(state.value, usage.jobs_by_state.get(state.value, 0)) for state in JobState]
    peak = max((count for _, count in counts), default=0)
    return [
        (state, count, round(count / peak * BAR_WIDTH, 1) if peak else 0.0)
        for state, count in counts
    ]


def usage_tenant(request: Request, viewer: Viewer) -> str:
    """The tenant asked for: any for a platform admin, else only the viewer's own."""
    wanted = request.query_params.get("tenant") or viewer.tenant
    if wanted != viewer.tenant and not viewer.is_platform_admin:
        raise NotFound(f"tenant {wanted} does not exist")
    return wanted


@router.get("/usage")
async def usage(request: Request, viewer: Overseer) -> Response:
    """A tenant's jobs by state, run time and storage over the last day, week or month."""
    period = request.query_params.get("period") or DEFAULT_PERIOD
    if period not in PERIODS:
        raise InvalidInput("period", f"must be one of {', '.join(PERIODS)}")
    accounts = accounts_of(request)
    until = request.app.state.server.now()
    found = await accounts.usage(
        viewer.principal, usage_tenant(request, viewer), until - PERIODS[period], until
    )
    tenants = await accounts.list_tenants(viewer.principal) if viewer.is_platform_admin else []
    return page(
        request,
        "usage.html",
        viewer,
        section="usage",
        usage=found,
        rows=usage_rows(found),
        total=sum(found.jobs_by_state.values()),
        period=period,
        periods=list(PERIODS),
        tenants=[tenant.id for tenant in tenants],
        bar_width=BAR_WIDTH,
    )
