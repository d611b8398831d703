"""Account use cases: tenants, users and roles, API keys, the audit log.

Each use case takes the acting :class:`Principal` and checks it first: platform
admins manage tenants; a tenant's owners manage its users, keys and audit log.
Another tenant's resources are reported as missing, never as forbidden.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from conveyor.domain.accounts import (
    ApiKey,
    Membership,
    Principal,
    Role,
    Scope,
    Tenant,
    TenantStatus,
    TenantUsage,
    User,
    check_password,
    check_tenant_id,
    normalize_email,
)
from conveyor.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from conveyor.domain.jobs import DEFAULT_TENANT, check_no_nul
from conveyor.services.auth import Passwords, new_api_key_secret, sha256
from conveyor.store.accounts_protocol import AccountStore

Clock = Callable[[], datetime]
MAX_USAGE_WINDOW = timedelta(days=366)


class AccountService:
    """Tenants, users, keys and the audit log, as their principals may use them."""

    def __init__(
        self,
        accounts: AccountStore,
        passwords: Passwords,
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.accounts = accounts
        self.passwords = passwords
        self.clock = clock
        self.on_change = on_change
        """Called after a change that may end someone's access (the credential cache)."""

    # -- the first start ---------------------------------------------------------

    async def bootstrap_admin(self, email: str, password: str | None) -> tuple[str, str] | None:
        """On a server with no users, create the platform admin (owner of the default
        tenant); return its email and password, or ``None`` if users exist."""
        if await self.accounts.count_users() > 0:
            return None
        password = password or secrets.token_urlsafe(12)
        user = await self._new_user(normalize_email(email), password, "Admin", is_admin=True)
        tenants = {tenant.id for tenant in await self.accounts.list_tenants()}
        if DEFAULT_TENANT in tenants:
            await self._join(DEFAULT_TENANT, user.id, Role.OWNER)
        return user.email, password

    # -- tenants -------------------------------------------------------------------

    async def create_tenant(
        self, actor: Principal, tenant_id: str, name: str, allow_signup: bool = False
    ) -> Tenant:
        """A new tenant, usable at once; its creator (an admin) becomes an owner."""
        actor.require_admin()
        tenant = Tenant(
            id=check_tenant_id(tenant_id),
            name=_text("name", name, 200),
            status=TenantStatus.ACTIVE,
            allow_signup=allow_signup,
            created_at=self.clock(),
        )
        created = await self.accounts.create_tenant(tenant)
        if actor.user_id is not None:
            await self._join(created.id, actor.user_id, Role.OWNER)
        return created

    async def list_tenants(self, actor: Principal) -> list[Tenant]:
        """Every tenant for an admin; otherwise the tenants the principal belongs to."""
        tenants = await self.accounts.list_tenants()
        if actor.is_admin:
            return tenants
        mine = set(actor.tenants) | {actor.tenant_id}
        return [tenant for tenant in tenants if tenant.id in mine]

    async def get_tenant(self, actor: Principal, tenant_id: str) -> Tenant:
        """One tenant the principal may see."""
        self._see_tenant(actor, tenant_id)
        return await self.accounts.get_tenant(tenant_id)

    async def set_tenant_status(
        self, actor: Principal, tenant_id: str, status: TenantStatus
    ) -> Tenant:
        """Suspend (requests refused, jobs not claimed) or reactivate a tenant."""
        actor.require_admin()
        try:
            return await self.accounts.set_tenant_status(tenant_id, status)
        finally:
            self.on_change()

    async def delete_tenant(self, actor: Principal, tenant_id: str) -> None:
        """Remove a tenant and everything it owns."""
        actor.require_admin()
        try:
            await self.accounts.delete_tenant(tenant_id)
        finally:
            self.on_change()

    async def usage(
        self, actor: Principal, tenant_id: str, since: datetime, until: datetime
    ) -> TenantUsage:
        """A tenant's jobs, run time and storage in a window (admins and its owners).
        Others see only the tenant they act in: their role elsewhere may be less."""
        self._see_tenant(actor, tenant_id)
        if not actor.is_admin:
            if tenant_id != actor.tenant_id:
                raise PermissionDenied(f"sign in to tenant {tenant_id!r} to see its usage")
            actor.require(Scope.ADMIN)
        if until <= since:
            raise InvalidInput("until", "must be after since")
        if until - since > MAX_USAGE_WINDOW:
            raise InvalidInput("since", "the window may span at most 366 days")
        await self.accounts.get_tenant(tenant_id)
        return await self.accounts.tenant_usage(tenant_id, since, until)

    # -- users ---------------------------------------------------------------------

    async def sign_up(self, tenant_id: str, email: str, password: str, name: str) -> User:
        """Join a tenant that allows sign-up, as a ``member``."""
        tenant = await self.accounts.get_tenant(tenant_id)
        if not tenant.allow_signup or tenant.status is not TenantStatus.ACTIVE:
            raise PermissionDenied(f"tenant {tenant_id!r} does not allow sign-up")
        user = await self._new_user(normalize_email(email), check_password(password), name)
        await self._join(tenant_id, user.id, Role.MEMBER)
        return user

    async def add_user(
        self, actor: Principal, email: str, role: Role, name: str = "", password: str | None = None
    ) -> tuple[User, Membership, str | None]:
        """Invite a user into the actor's tenant; a new account gets ``password`` or a
        generated one, returned once. Only a platform admin may add an existing account."""
        actor.require(Scope.ADMIN)
        email = normalize_email(email)
        user = await self.accounts.find_user_by_email(email)
        generated = None
        if user is None:
            generated = None if password else secrets.token_urlsafe(12)
            chosen = check_password(password) if password else generated
            user = await self._new_user(email, str(chosen), name or email.split("@")[0])
        elif not actor.is_admin:
            # Owners cannot pull someone else's account into their tenant.
            raise Conflict("an account with this email exists: a platform admin can add it")
        elif await self.accounts.get_membership(actor.tenant_id, user.id) is not None:
            raise Conflict("this user already belongs to the tenant")
        membership = await self._join(actor.tenant_id, user.id, role)
        return user, membership, generated

    async def list_users(self, actor: Principal) -> list[tuple[User, Membership]]:
        """The users of the actor's tenant with their roles."""
        actor.require(Scope.ADMIN)
        return await self.accounts.list_members(actor.tenant_id)

    async def set_role(self, actor: Principal, user_id: str, role: Role) -> tuple[User, Membership]:
        """Change a user's role in the actor's tenant."""
        actor.require(Scope.ADMIN)
        try:
            membership = await self.accounts.change_role(actor.tenant_id, user_id, role)
        finally:
            self.on_change()
        return await self.accounts.get_user(user_id), membership

    async def remove_user(self, actor: Principal, user_id: str) -> None:
        """Take a user out of the actor's tenant (its sessions there end)."""
        actor.require(Scope.ADMIN)
        if user_id == actor.user_id:
            raise Conflict("you cannot remove yourself from the tenant")
        try:
            await self.accounts.remove_membership(actor.tenant_id, user_id)
        finally:
            self.on_change()

    async def me(self, actor: Principal) -> tuple[User, list[Membership]]:
        """The signed-in user and its tenants."""
        if actor.user_id is None:
            raise PermissionDenied("API keys have no user account")
        user = await self.accounts.get_user(actor.user_id)
        return user, await self.accounts.list_memberships(user.id)

    def hash_new_password(self, password: str) -> str:
        """Validate and hash a new password."""
        return self.passwords.hash(check_password(password))

    # -- API keys --------------------------------------------------------------------

    async def create_key(
        self, actor: Principal, name: str, scopes: frozenset[Scope]
    ) -> tuple[ApiKey, str]:
        """A new key of the actor's tenant; the raw key is returned only here."""
        actor.require(Scope.ADMIN)
        beyond = scopes - actor.scopes
        if beyond:
            raise PermissionDenied(f"you cannot grant {sorted(s.value for s in beyond)}")
        prefix, raw = new_api_key_secret()
        key = ApiKey(
            id=uuid.uuid4().hex,
            tenant_id=actor.tenant_id,
            name=_text("name", name, 200),
            prefix=prefix,
            secret_hash=sha256(raw),
            scopes=scopes,
            created_by=actor.actor,
            created_at=self.clock(),
        )
        return await self.accounts.create_api_key(key), raw

    async def list_keys(self, actor: Principal) -> list[ApiKey]:
        """The actor's tenant's keys (prefixes only)."""
        actor.require(Scope.ADMIN)
        return await self.accounts.list_api_keys(actor.tenant_id)

    async def revoke_key(self, actor: Principal, key_id: str) -> ApiKey:
        """Revoke a key of the actor's tenant; it stops working at once."""
        actor.require(Scope.ADMIN)
        try:
            return await self.accounts.revoke_api_key(actor.tenant_id, key_id, self.clock())
        finally:
            self.on_change()

    # -- helpers ---------------------------------------------------------------------

    async def _new_user(self, email: str, password: str, name: str, is_admin: bool = False) -> User:
        now = self.clock()
        user = User(
            id=uuid.uuid4().hex,
            email=email,
            name=_text("name", name or email.split("@")[0], 200),
            password_hash=self.passwords.hash(password),
            is_admin=is_admin,
            time_zone="UTC",
            failed_logins=0,
            locked_until=None,
            password_changed_at=now,
            created_at=now,
        )
        return await self.accounts.create_user(user)

    async def _join(self, tenant_id: str, user_id: str, role: Role) -> Membership:
        membership = Membership(tenant_id, user_id, role, self.clock())
        return await self.accounts.add_membership(membership)

    @staticmethod
    def _see_tenant(actor: Principal, tenant_id: str) -> None:
        if not actor.is_admin and tenant_id not in (actor.tenant_id, *actor.tenants):
            raise NotFound(f"tenant {tenant_id} does not exist")


def _text(field: str, value: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(field, "must not be empty")
    if len(text) > limit:
        raise InvalidInput(field, f"must be at most {limit} characters")
    return check_no_nul(field, text)
