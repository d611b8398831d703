"""Sign-in, sessions and credentials: who is calling, proven by password, token or key.

- Passwords are hashed with Argon2id (cost from the settings).
- Access tokens are short-lived JWTs (HS256, ``kid`` in the header, two keys may
  verify during a rotation). They carry the moment of the last password change,
  so a changed password ends every session at once.
- Refresh tokens are opaque (``crt_<id>.<secret>``), kept as SHA-256, and rotate
  on every use; presenting a used one again revokes its whole family.
- API keys (``cvk_<prefix>_<secret>``) are kept as SHA-256 and compared in
  constant time; the prefix finds the row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from conveyor.domain.accounts import (
    ApiKey,
    Membership,
    Principal,
    RefreshToken,
    TenantStatus,
    User,
    key_principal,
    lockout_until,
    normalize_email,
    user_principal,
)
from conveyor.domain.errors import ConveyorError, NotFound, PermissionDenied
from conveyor.domain.ratelimit import TokenBuckets, address_key
from conveyor.store.accounts_protocol import AccountStore

ALGORITHM = "HS256"
KEY_TOUCH_INTERVAL = timedelta(minutes=1)
PRINCIPAL_TTL = 1.0
"""Seconds a checked credential is trusted without asking the store again. A change
made on this node (revoked key, suspended tenant, new password) clears it at once;
other nodes see it within this time."""
MAX_CACHED = 10_000


class Unauthenticated(ConveyorError):
    """The credentials are missing, wrong or expired."""


class LockedOut(Unauthenticated):
    """Too many failed logins: wait before trying again."""

    def __init__(self, retry_after: float, why: str = "too many failed logins") -> None:
        self.retry_after = max(1.0, retry_after)
        super().__init__(f"{why}: try again in {int(self.retry_after)} s")


class TenantSuspended(PermissionDenied):
    """This tenant is suspended."""


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful login or refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    tenant_id: str
    user: User


def sha256(value: str) -> str:
    """Hex SHA-256 of a string (API keys and refresh tokens are high-entropy)."""
    return hashlib.sha256(value.encode()).hexdigest()


class Passwords:
    """Argon2id hashing with the configured cost."""

    def __init__(self, time_cost: int = 2, memory_kib: int = 19_456) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """A new hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; costs the same when the user does not exist."""
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False


class TokenSigner:
    """Signs and verifies access tokens with the newest key; older keys still verify."""

    def __init__(self, keys: list[tuple[str, str]], lifetime: timedelta) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = dict(keys)
        self._current = keys[0]
        self.lifetime = lifetime

    def sign(self, claims: dict[str, Any], now: datetime) -> str:
        """A signed token with ``claims`` plus ``iat``, ``exp`` and ``jti``."""
        kid, secret = self._current
        body = {**claims, "iat": now, "exp": now + self.lifetime, "jti": uuid.uuid4().hex}
        return jwt.encode(body, secret, algorithm=ALGORITHM, headers={"kid": kid})

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid, unexpired token signed by one of our keys."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            secret = self._keys.get(kid) if isinstance(kid, str) else None
            if secret is None:
                raise Unauthenticated("the token was not signed by this server")
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("the access token is not valid") from None
        return claims


class Authenticator:
    """Turns credentials into a :class:`Principal`, and manages sessions and keys."""

    def __init__(
        self,
        accounts: AccountStore,
        passwords: Passwords,
        signer: TokenSigner,
        refresh_lifetime: timedelta,
        clock: Callable[[], datetime],
        failures_by_address: TokenBuckets | None = None,
    ) -> None:
        self.accounts = accounts
        self.passwords = passwords
        self.signer = signer
        self.refresh_lifetime = refresh_lifetime
        self.clock = clock
        self.failures_by_address = failures_by_address or TokenBuckets(0, 1)
        """Failed sign-ins allowed per client address (password guessing across accounts)."""
        self._key_touched: dict[str, datetime] = {}
        self._principals: dict[str, tuple[float, Principal]] = {}

    def forget(self) -> None:
        """Drop every cached principal (after a change to accounts, keys or tenants)."""
        self._principals.clear()

    def _cached(self, credential: str) -> Principal | None:
        found = self._principals.get(credential)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def _remember(self, credential: str, principal: Principal) -> Principal:
        if len(self._principals) >= MAX_CACHED:
            self._principals.clear()
        self._principals[credential] = (time.monotonic() + PRINCIPAL_TTL, principal)
        return principal

    # -- sign-in and sessions ---------------------------------------------------

    async def login(
        self, email: str, password: str, tenant_id: str | None = None, address: str = ""
    ) -> Session:
        """Check a password (with lockout per account, and per ``address`` after too many
        failures from it) and open a session in one of the user's tenants."""
        key = address_key(address) if address else ""
        # Taken before checking, given back on success: attempts sent all at once
        # cannot pass the check before the first failures are counted.
        wait = self.failures_by_address.take(key, time.monotonic()) if key else 0
        if wait > 0:
            raise LockedOut(wait, "too many failed sign-ins from your address")
        session = await self._login(email, password, tenant_id)
        if key:
            self.failures_by_address.give_back(key)
        return session

    async def _login(self, email: str, password: str, tenant_id: str | None) -> Session:
        now = self.clock()
        try:
            user = await self.accounts.find_user_by_email(normalize_email(email))
        except ConveyorError:
            user = None
        if user is not None and user.locked_until is not None and user.locked_until > now:
            raise LockedOut((user.locked_until - now).total_seconds())
        if not self.passwords.verify(user.password_hash if user else None, password) or not user:
            if user is not None:
                failures = user.failed_logins + 1
                await self.accounts.record_login_failure(
                    user.id, failures, lockout_until(failures, now)
                )
            raise Unauthenticated("wrong email or password")
        if user.failed_logins or user.locked_until:
            await self.accounts.record_login_success(user.id)
        membership = await self._membership(user, tenant_id)
        return await self._open_session(user, membership, uuid.uuid4().hex, now)

    async def refresh(self, raw_token: str) -> Session:
        """Rotate a refresh token; reusing an old one revokes its whole family."""
        now = self.clock()
        token = await self._find_refresh(raw_token)
        if not await self.accounts.use_refresh_token(token.id, now):
            if token.used_at is not None or (await self._reloaded(token)).used_at is not None:
                await self.accounts.revoke_token_family(token.family_id, now)
                raise Unauthenticated("this refresh token was already used: the session is ended")
            raise Unauthenticated("the refresh token has expired or was revoked")
        user = await self.accounts.get_user(token.user_id)
        membership = await self.accounts.get_membership(token.tenant_id, user.id)
        if membership is None:
            raise Unauthenticated("you no longer belong to this tenant")
        return await self._open_session(user, membership, token.family_id, now)

    async def logout(self, raw_token: str) -> None:
        """End the session a refresh token belongs to."""
        token = await self._find_refresh(raw_token)
        await self.accounts.revoke_token_family(token.family_id, self.clock())

    async def change_password(self, user_id: str, old: str, new_hash: str) -> None:
        """Replace a password after checking the old one; every session ends."""
        user = await self.accounts.get_user(user_id)
        if not self.passwords.verify(user.password_hash, old):
            raise PermissionDenied("the current password is wrong")
        await self.accounts.set_password(user_id, new_hash, self.clock())
        self.forget()

    # -- who is calling ----------------------------------------------------------

    async def principal_from_token(self, token: str) -> Principal:
        """The signed-in user an access token speaks for, checked against the store."""
        cached = self._cached(token)
        if cached is not None:
            return cached
        claims = self.signer.verify(token)
        try:
            user = await self.accounts.get_user(str(claims["sub"]))
        except NotFound:
            raise Unauthenticated("this account no longer exists") from None
        if claims.get("pwd") != _stamp(user.password_changed_at):
            raise Unauthenticated("the password was changed: sign in again")
        membership = await self.accounts.get_membership(str(claims.get("tid")), user.id)
        if membership is None:
            raise Unauthenticated("you no longer belong to this tenant")
        await self._check_active(membership.tenant_id)
        return self._remember(token, user_principal(user, membership, claims.get("tenants", ())))

    async def principal_from_key(self, raw_key: str) -> Principal:
        """The program an API key speaks for; revoked or unknown keys are refused."""
        cache_key = sha256(raw_key)
        cached = self._cached(cache_key)
        if cached is not None:
            return cached
        key = await self._find_key(raw_key)
        await self._check_active(key.tenant_id)
        now = self.clock()
        last = self._key_touched.get(key.id)
        if last is None or now - last > KEY_TOUCH_INTERVAL:
            self._key_touched[key.id] = now
            await self.accounts.touch_api_key(key.id, now)
        return self._remember(cache_key, key_principal(key))

    # -- helpers -----------------------------------------------------------------

    async def _membership(self, user: User, tenant_id: str | None) -> Membership:
        memberships = await self.accounts.list_memberships(user.id)
        for membership in memberships:
            if tenant_id is None or membership.tenant_id == tenant_id:
                return membership
        if tenant_id is not None:
            raise Unauthenticated(f"you do not belong to tenant {tenant_id!r}")
        raise Unauthenticated("this account belongs to no tenant yet")

    async def _open_session(
        self, user: User, membership: Membership, family_id: str, now: datetime
    ) -> Session:
        token_id, secret = uuid.uuid4().hex, secrets.token_urlsafe(32)
        tenants = [m.tenant_id for m in await self.accounts.list_memberships(user.id)]
        await self.accounts.add_refresh_token(
            RefreshToken(
                id=token_id,
                family_id=family_id,
                user_id=user.id,
                tenant_id=membership.tenant_id,
                token_hash=sha256(secret),
                created_at=now,
                expires_at=now + self.refresh_lifetime,
            )
        )
        claims = {
            "sub": user.id,
            "tid": membership.tenant_id,
            "role": str(membership.role),
            "pwd": _stamp(user.password_changed_at),
            "tenants": tenants,
        }
        return Session(
            access_token=self.signer.sign(claims, now),
            refresh_token=f"crt_{token_id}.{secret}",
            expires_in=int(self.signer.lifetime.total_seconds()),
            tenant_id=membership.tenant_id,
            user=user,
        )

    async def _find_refresh(self, raw_token: str) -> RefreshToken:
        token_id, _, secret = raw_token.removeprefix("crt_").partition(".")
        token = await self.accounts.get_refresh_token(token_id) if secret else None
        if token is None or not hmac.compare_digest(token.token_hash, sha256(secret)):
            raise Unauthenticated("the refresh token is not valid")
        return token

    async def _reloaded(self, token: RefreshToken) -> RefreshToken:
        return await self.accounts.get_refresh_token(token.id) or token

    async def _find_key(self, raw_key: str) -> ApiKey:
        parts = raw_key.split("_", 2)
        key = await self.accounts.find_api_key(parts[1]) if len(parts) == 3 else None
        if key is None or not hmac.compare_digest(key.secret_hash, sha256(raw_key)):
            raise Unauthenticated("the API key is not valid")
        if key.revoked_at is not None:
            raise Unauthenticated("the API key was revoked")
        return key

    async def _check_active(self, tenant_id: str) -> None:
        tenant = await self.accounts.get_tenant(tenant_id)
        if tenant.status is not TenantStatus.ACTIVE:
            raise TenantSuspended(f"tenant {tenant_id!r} is suspended")


def new_api_key_secret() -> tuple[str, str]:
    """A fresh ``(prefix, raw key)``; only the raw key's SHA-256 is stored."""
    prefix = secrets.token_hex(4)
    return prefix, f"cvk_{prefix}_{secrets.token_urlsafe(32)}"


def _stamp(moment: datetime) -> int:
    """Milliseconds: two password changes within one second still end the first's tokens."""
    return round(moment.timestamp() * 1000)
