"""Tenants, users, roles, API keys and sessions: who may do what.

Records only, plus the pure rules about them (which scopes a role grants, how
long a login lockout lasts, whether a principal may see a job). Hashing,
tokens and storage live in the services and stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from conveyor.domain.errors import InvalidInput, PermissionDenied

PLATFORM_TENANT = "*"
"""The audit log's tenant for platform-wide changes (tenants created or deleted)."""

_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL = re.compile(r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,255}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

LOCKOUT_AFTER = 5
"""Failed logins in a row before the account is locked for a while."""
LOCKOUT_MAX = timedelta(minutes=15)


class Role(StrEnum):
    """A user's role in one tenant."""

    OWNER = "owner"
    MEMBER = "member"
    AGENT = "agent"


class Scope(StrEnum):
    """What an API key (or a role) allows."""

    JOBS_READ = "jobs:read"
    JOBS_WRITE = "jobs:write"
    JOBS_WORK = "jobs:work"
    ADMIN = "admin"


class TenantStatus(StrEnum):
    """Whether a tenant's requests are served and its jobs claimed."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


ROLE_SCOPES: Mapping[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset(Scope),
    Role.MEMBER: frozenset({Scope.JOBS_READ, Scope.JOBS_WRITE, Scope.JOBS_WORK}),
    Role.AGENT: frozenset({Scope.JOBS_READ, Scope.JOBS_WORK}),
}


@dataclass(frozen=True, slots=True)
class Tenant:
    """An isolation boundary: every job, queue, key and event belongs to one."""

    id: str
    name: str
    status: TenantStatus
    allow_signup: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in with an email and a password."""

    id: str
    email: str
    name: str
    password_hash: str
    is_admin: bool
    time_zone: str
    failed_logins: int
    locked_until: datetime | None
    password_changed_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's role in one tenant."""

    tenant_id: str
    user_id: str
    role: Role
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key for a program or a worker; only its SHA-256 is kept."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    secret_hash: str
    scopes: frozenset[Scope]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One link of a session's refresh-token chain (a *family*); used at most once."""

    id: str
    family_id: str
    user_id: str
    tenant_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change made through the API: who, in which tenant, what, when, from where."""

    id: int
    tenant_id: str
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]
    ip: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit entry before it is stored (it has no id yet)."""

    tenant_id: str
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]
    ip: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever is acting: a signed-in user in one tenant, or an API key."""

    tenant_id: str
    scopes: frozenset[Scope]
    user_id: str | None = None
    email: str | None = None
    role: Role | None = None
    api_key_id: str | None = None
    is_admin: bool = False
    tenants: tuple[str, ...] = field(default=())

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.api_key_id is not None:
            return f"key:{self.api_key_id}"
        return f"user:{self.email or self.user_id}"

    @property
    def assigned_only(self) -> bool:
        """An ``agent`` sees and acts only on jobs assigned to it."""
        return self.role is Role.AGENT

    def require(self, scope: Scope) -> None:
        """Raise ``PermissionDenied`` unless this principal holds ``scope``."""
        if scope not in self.scopes:
            raise PermissionDenied(f"this needs the {scope.value!r} permission")

    def require_admin(self) -> None:
        """Raise ``PermissionDenied`` unless this is a platform admin."""
        if not self.is_admin:
            raise PermissionDenied("this needs a platform admin")

    def may_see_assignee(self, assignee: str | None) -> bool:
        """Whether a job with this assignee is visible to this principal."""
        return not self.assigned_only or (assignee is not None and assignee == self.email)


def user_principal(user: User, membership: Membership, tenants: Iterable[str] = ()) -> Principal:
    """The principal of a signed-in user acting in ``membership``'s tenant."""
    return Principal(
        tenant_id=membership.tenant_id,
        scopes=ROLE_SCOPES[membership.role],
        user_id=user.id,
        email=user.email,
        role=membership.role,
        is_admin=user.is_admin,
        tenants=tuple(tenants),
    )


def key_principal(key: ApiKey) -> Principal:
    """The principal of a program calling with an API key."""
    return Principal(tenant_id=key.tenant_id, scopes=key.scopes, api_key_id=key.id)


def lockout_until(failed_logins: int, now: datetime) -> datetime | None:
    """When a user may try again after ``failed_logins`` failures in a row.

    The first few failures cost nothing; from :data:`LOCKOUT_AFTER` on, the wait
    doubles from 30 seconds up to :data:`LOCKOUT_MAX`.
    """
    if failed_logins < LOCKOUT_AFTER:
        return None
    wait = timedelta(seconds=30 * 2 ** min(failed_logins - LOCKOUT_AFTER, 10))
    return now + min(wait, LOCKOUT_MAX)


def check_tenant_id(value: str) -> str:
    """A tenant id: 2-63 lowercase letters, digits and dashes."""
    if not isinstance(value, str) or not _TENANT_ID.match(value):
        raise InvalidInput("id", "must be 2-63 lowercase letters, digits or dashes")
    return value


def normalize_email(value: str) -> str:
    """An email address, trimmed and lowercased; rejects what cannot be one."""
    email = value.strip().lower() if isinstance(value, str) else ""
    if not _EMAIL.match(email):
        raise InvalidInput("email", "is not an email address")
    return email


def check_password(value: str) -> str:
    """A new password: long enough to resist guessing, short enough to hash."""
    if not isinstance(value, str) or len(value) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at most {MAX_PASSWORD_LENGTH} characters")
    return value


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names; an unknown name is an error that names it."""
    known = {scope.value: scope for scope in Scope}
    scopes = set()
    for value in values:
        if value not in known:
            raise InvalidInput("scopes", f"unknown scope {value!r} (known: {', '.join(known)})")
        scopes.add(known[value])
    if not scopes:
        raise InvalidInput("scopes", "must name at least one scope")
    return frozenset(scopes)


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """What one tenant used in a time window."""

    tenant_id: str
    since: datetime
    until: datetime
    jobs_by_state: Mapping[str, int]
    """Jobs created in the window, by their current state."""
    run_seconds: float
    """Time spent running attempts that finished in the window."""
    storage_bytes: int
    """Payload, result and artifact bytes the tenant keeps now."""
