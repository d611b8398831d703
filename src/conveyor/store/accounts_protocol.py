"""The AccountStore protocol: tenants, users, memberships, sessions, API keys, audit.

Not a hot path: one portable implementation serves both databases
(:mod:`conveyor.store.accounts`), held to this protocol by the contract suite.
Every method that names a tenant touches only that tenant's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from conveyor.domain.accounts import (
    ApiKey,
    AuditEntry,
    AuditRecord,
    Membership,
    RefreshToken,
    Role,
    Tenant,
    TenantStatus,
    TenantUsage,
    User,
)


class AccountStore(Protocol):
    """Durable storage for who may use Conveyor and what they did."""

    # -- tenants ---------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Add a tenant; ``Conflict`` if the id is taken."""

    async def get_tenant(self, tenant_id: str) -> Tenant:
        """One tenant, or ``NotFound``."""

    async def list_tenants(self) -> list[Tenant]:
        """Every tenant, by id."""

    async def set_tenant_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        """Suspend or reactivate a tenant; ``NotFound`` if it does not exist."""

    async def delete_tenant(self, tenant_id: str) -> None:
        """Remove a tenant and everything it owns, in one transaction; ``NotFound``."""

    async def tenant_usage(self, tenant_id: str, since: datetime, until: datetime) -> TenantUsage:
        """Jobs by state, run seconds and storage of one tenant in a window."""

    # -- users and memberships ---------------------------------------------------

    async def create_user(self, user: User) -> User:
        """Add a user; ``Conflict`` if the email is taken."""

    async def get_user(self, user_id: str) -> User:
        """One user, or ``NotFound``."""

    async def find_user_by_email(self, email: str) -> User | None:
        """The user with this (normalized) email, if any."""

    async def count_users(self) -> int:
        """How many users exist (0 on a new server)."""

    async def record_login_failure(
        self, user_id: str, failed_logins: int, locked_until: datetime | None
    ) -> None:
        """Store the failure count and lockout after a wrong password."""

    async def record_login_success(self, user_id: str) -> None:
        """Clear the failure count and lockout."""

    async def set_password(self, user_id: str, password_hash: str, changed_at: datetime) -> int:
        """Replace a password hash and revoke every refresh token of the user, in one
        transaction; return how many tokens were revoked."""

    async def add_membership(self, membership: Membership) -> Membership:
        """Give a user a role in a tenant (replacing an earlier role)."""

    async def get_membership(self, tenant_id: str, user_id: str) -> Membership | None:
        """A user's role in a tenant, if any."""

    async def list_memberships(self, user_id: str) -> list[Membership]:
        """Every tenant a user belongs to, by tenant id."""

    async def list_members(self, tenant_id: str) -> list[tuple[User, Membership]]:
        """The users of a tenant with their roles, by email."""

    async def change_role(self, tenant_id: str, user_id: str, role: Role) -> Membership:
        """Give a member another role; ``NotFound`` if not a member, ``Conflict`` if it
        would leave the tenant without an owner (checked and written atomically)."""

    async def remove_membership(self, tenant_id: str, user_id: str) -> None:
        """Take a user out of a tenant (revoking its sessions there); ``NotFound``, or
        ``Conflict`` if it is the tenant's last owner (checked and written atomically)."""

    # -- refresh tokens ------------------------------------------------------------

    async def add_refresh_token(self, token: RefreshToken) -> None:
        """Store a new refresh token (only its hash)."""

    async def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        """A refresh token by id, used or not."""

    async def use_refresh_token(self, token_id: str, now: datetime) -> bool:
        """Mark an unused, unrevoked, unexpired token used (compare-and-set);
        ``False`` if it was not in that state."""

    async def revoke_token_family(self, family_id: str, now: datetime) -> int:
        """Revoke every token of a session; return how many were still live."""

    async def revoke_user_tokens(self, user_id: str, now: datetime) -> int:
        """Revoke every session of a user; return how many tokens were still live."""

    # -- API keys ----------------------------------------------------------------------

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Store a new key (only its hash); ``Conflict`` if the prefix is taken."""

    async def find_api_key(self, prefix: str) -> ApiKey | None:
        """A key by its visible prefix, revoked or not."""

    async def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        """A tenant's keys, newest first."""

    async def revoke_api_key(self, tenant_id: str, key_id: str, now: datetime) -> ApiKey:
        """Revoke a key of this tenant; ``NotFound`` if the tenant has no such key."""

    async def touch_api_key(self, key_id: str, now: datetime) -> None:
        """Record when a key was last used."""

    # -- audit log and signing keys --------------------------------------------------

    async def add_audit(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        target: str,
        detail: Mapping[str, Any],
        ip: str | None,
        now: datetime,
    ) -> AuditEntry:
        """Append one entry to the audit log."""

    async def add_audit_entries(self, records: Sequence[AuditRecord]) -> int:
        """Append several entries in one transaction, in order; return how many."""

    async def list_audit(
        self,
        tenant_id: str | None,
        after_id: int = 0,
        limit: int = 100,
        since: datetime | None = None,
    ) -> list[AuditEntry]:
        """Audit entries after a cursor, oldest first; ``None``: every tenant."""

    async def prune_audit(self, before: datetime) -> int:
        """Delete entries older than ``before``; return how many."""

    async def signing_keys(self) -> list[tuple[str, str, datetime]]:
        """The token signing keys ``(kid, secret, created_at)``, newest first."""

    async def add_signing_key(self, kid: str, secret: str, now: datetime) -> None:
        """Store a signing key (kept so every server node signs and verifies alike)."""

    async def check_key(self, now: datetime, *, take_over: bool = False) -> None:
        """Make sure the store's key is the one that seals the database's secrets;
        ``WrongSecretKey`` if not (the first caller records the check). ``take_over``:
        a key opening the check only as a previous key seals it with the new one."""

    async def seal_secrets(self) -> int:
        """Seal with the current key the signing keys kept in plain or sealed by a
        previous key; ``WrongSecretKey`` if one opens with no key. How many it sealed."""
