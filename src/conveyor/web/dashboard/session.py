"""Dashboard sessions: the refresh token of a password sign-in, kept in an HttpOnly
cookie and checked against the store on every request (trusted for one second).

The token is never rotated by the dashboard, so concurrent requests cannot trip the
refresh-token reuse detection; signing out revokes its family, which ends the
session at once. The CSRF token is an HMAC of the session token, so it needs no
storage and changes with every session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from conveyor.domain.accounts import Membership, Principal, Role, Scope, TenantStatus
from conveyor.domain.accounts import user_principal as principal_of_user
from conveyor.domain.errors import NotFound
from conveyor.server import Server
from conveyor.services.auth import PRINCIPAL_TTL, Unauthenticated, sha256

SESSION_COOKIE = "conveyor_session"
TENANT_COOKIE = "conveyor_tenant"
LOGIN_CSRF_COOKIE = "conveyor_login_csrf"
CSRF_FIELD = "csrf_token"
MAX_CACHED = 10_000


class SignInRequired(Exception):
    """No valid session: the visitor is sent to the sign-in page."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason or "sign in")


class CsrfRejected(Exception):
    """A form sent without this session's CSRF token, or from another origin."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person looking at a page, with what the pages need to know."""

    principal: Principal
    csrf: str

    @property
    def email(self) -> str:
        """Who is signed in."""
        return self.principal.email or ""

    @property
    def tenant(self) -> str:
        """The tenant the pages show."""
        return self.principal.tenant_id

    @property
    def tenants(self) -> tuple[str, ...]:
        """Every tenant this person may switch to."""
        return self.principal.tenants or (self.tenant,)

    @property
    def is_agent(self) -> bool:
        """An agent sees only the Jobs pages, and only its own jobs."""
        return self.principal.role is Role.AGENT

    @property
    def may_write(self) -> bool:
        """Whether retry, cancel and queue controls are offered."""
        return Scope.JOBS_WRITE in self.principal.scopes

    @property
    def is_owner(self) -> bool:
        """Whether the tenant's settings are shown: webhooks, incoming hooks, users,
        API keys and usage (the ``admin`` permission, as the API requires)."""
        return Scope.ADMIN in self.principal.scopes

    @property
    def is_platform_admin(self) -> bool:
        """Whether every tenant is shown (a platform admin)."""
        return self.principal.is_admin


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session (an HMAC keyed by the secret session token)."""
    return hmac.new(session_token.encode(), b"conveyor-dashboard-csrf", hashlib.sha256).hexdigest()


class Sessions:
    """Turns session cookies into principals, opens sessions and ends them."""

    def __init__(self, server: Server, clock: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.clock = clock
        """Now, in monotonic seconds: a checked session is trusted for ``PRINCIPAL_TTL``."""
        self._cache: dict[tuple[str, str], tuple[float, Principal]] = {}

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when the server's public URL is https."""
        return self.server.settings.url.startswith("https://")

    async def open(self, email: str, password: str, tenant: str | None, address: str) -> str:
        """Check a password and return a new session token (``Unauthenticated`` if wrong,
        ``LockedOut`` after too many failures for the account or from ``address``)."""
        session = await self.server.auth.login(email, password, tenant or None, address)
        return session.refresh_token

    async def close(self, session_token: str) -> None:
        """End a session: its token family is revoked in the store."""
        self._cache = {k: v for k, v in self._cache.items() if k[0] != sha256(session_token)}
        try:
            await self.server.auth.logout(session_token)
        except Unauthenticated:
            return

    async def principal(self, session_token: str, tenant: str | None) -> Principal:
        """Who a session token speaks for, in ``tenant`` if the person belongs to it
        (else the tenant signed in to); ``SignInRequired`` when the session is over."""
        key = (sha256(session_token), tenant or "")
        found = self._cache.get(key)
        if found is not None and found[0] > self.clock():
            return found[1]
        principal = await self._resolve(session_token, tenant)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[key] = (self.clock() + PRINCIPAL_TTL, principal)
        return principal

    async def _resolve(self, session_token: str, tenant: str | None) -> Principal:
        accounts = self.server.accounts_store
        token_id, _, secret = session_token.removeprefix("crt_").partition(".")
        token = await accounts.get_refresh_token(token_id) if secret else None
        if token is None or not hmac.compare_digest(token.token_hash, sha256(secret)):
            raise SignInRequired()
        if token.revoked_at is not None or token.expires_at <= self.server.now():
            raise SignInRequired("your session has ended: sign in again")
        try:
            user = await accounts.get_user(token.user_id)
        except NotFound:
            raise SignInRequired("this account no longer exists") from None
        memberships = await accounts.list_memberships(user.id)
        chosen = _chosen(memberships, tenant, token.tenant_id)
        if chosen is None:
            raise SignInRequired("you no longer belong to this tenant")
        if (await accounts.get_tenant(chosen.tenant_id)).status is not TenantStatus.ACTIVE:
            raise SignInRequired(f"tenant {chosen.tenant_id!r} is suspended")
        return principal_of_user(user, chosen, [m.tenant_id for m in memberships])

    async def viewer(self, request: Request) -> Viewer:
        """The signed-in viewer of a request; ``SignInRequired`` if there is none."""
        session_token = request.cookies.get(SESSION_COOKIE)
        if not session_token:
            raise SignInRequired()
        principal = await self.principal(session_token, request.cookies.get(TENANT_COOKIE))
        return Viewer(principal, csrf_token(session_token))


def _chosen(memberships: list[Membership], wanted: str | None, signed_in: str) -> Membership | None:
    by_tenant = {m.tenant_id: m for m in memberships}
    return by_tenant.get(wanted or signed_in) or by_tenant.get(signed_in)


def sessions_of(request: Request) -> Sessions:
    """The dashboard's sessions of this app."""
    sessions: Sessions = request.app.state.dashboard_sessions
    return sessions


async def cookie_principal(request: Request) -> Principal | None:
    """The principal of the request's dashboard session cookie, if it has a valid one
    (for the event stream, which a browser's EventSource opens with cookies only)."""
    sessions: Sessions | None = getattr(request.app.state, "dashboard_sessions", None)
    if sessions is None or not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return (await sessions.viewer(request)).principal
    except SignInRequired:
        return None


def same_origin(request: Request, public_url: str | None) -> bool:
    """Whether a POST comes from this site: its ``Origin`` (or else ``Referer``) is
    the request's own origin or the configured public URL's."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    origin = f"{parts.scheme}://{parts.netloc}"
    allowed = {f"{request.url.scheme}://{request.url.netloc}"}
    if public_url:
        public = urlsplit(public_url)
        allowed.add(f"{public.scheme}://{public.netloc}")
    return origin in allowed


def check_csrf(request: Request, sent: object, expected: str) -> None:
    """Refuse (``CsrfRejected``) a form from another origin or without the right token."""
    if not same_origin(request, request.app.state.server.settings.public_url):
        raise CsrfRejected("this form did not come from this site")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfRejected("the form's security token is missing or wrong: reload the page")


def new_login_token() -> str:
    """A random token for the sign-in form (checked against its cookie)."""
    return secrets.token_urlsafe(24)
