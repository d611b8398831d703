"""The AccountStore, once for both databases.

Not a hot path: the portable queries of ``accounts.sql`` run through the store's
``run_sql`` primitive (one write transaction per call), and rows become records
here. The two dialect-specific queries of usage (``tenant_run_seconds``,
``tenant_storage_bytes``) do time and JSON arithmetic and live in each dialect's
``queries.sql``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from conveyor.domain.accounts import (
    ApiKey,
    AuditEntry,
    AuditRecord,
    Membership,
    RefreshToken,
    Role,
    Scope,
    Tenant,
    TenantStatus,
    TenantUsage,
    User,
)
from conveyor.domain.errors import Conflict, ConveyorError, NotFound
from conveyor.store import rows
from conveyor.store.protocol import Store
from conveyor.store.queries import load_portable, load_queries, to_dialect
from conveyor.store.sealing import (
    KEY_CHECK,
    SecretBox,
    UnreadableSecret,
    UnreadableSigningKeys,
    WrongSecretKey,
    required_box,
    seal_secrets,
)

Row = dict[str, Any]
Step = tuple[str, Mapping[str, Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Jobs first: a finish that commits meanwhile writes its attempt row and events
# before the jobs go (the delete waits for it), so the next statements see them.
_TENANT_DELETES = (
    "delete_tenant_jobs",
    "delete_tenant_artifacts",
    "delete_tenant_attempts",
    "delete_tenant_events",
    "delete_tenant_queues",
    "delete_tenant_workers",
    "delete_tenant_refresh_tokens",
    "delete_tenant_memberships",
    "delete_tenant_api_keys",
    "delete_tenant_audit",
    "delete_tenant_task_versions",
    "delete_tenant_schedule_runs",
    "delete_tenant_schedules",
    "delete_tenant_webhook_deliveries",
    "delete_tenant_webhooks",
    "delete_tenant",
)


@contextmanager
def _reworded(error: type[ConveyorError], message: str) -> Iterator[None]:
    """Re-raise ``error`` with a message that names what the caller did."""
    try:
        yield
    except error:
        raise error(message) from None


AUDIT_ROWS_PER_INSERT = 200
"""Audit entries per INSERT statement (7 parameters each, far below any limit)."""


class SqlAccountStore:
    """The :class:`~conveyor.store.accounts_protocol.AccountStore` on a store's database."""

    def __init__(self, store: Store, box: SecretBox | None = None) -> None:
        self.store = store
        self._box = box
        self._sql = dict(load_portable("accounts.sql", store.dialect))
        dialect_queries = load_queries(store.dialect)
        for name in ("tenant_run_seconds", "tenant_storage_bytes"):
            self._sql[name] = dialect_queries[name]

    # -- plumbing ---------------------------------------------------------------

    async def _run(self, *steps: Step) -> list[list[Row]]:
        """Run named queries in one transaction; each one's rows."""
        statements = [(self._sql[name], params) for name, params in steps]
        reads_only = all(sql.lstrip().upper().startswith("SELECT") for sql, _ in statements)
        return await self.store.run_sql(statements, write=not reads_only)

    async def _rows(self, name: str, /, **params: Any) -> list[Row]:
        (found,) = await self._run((name, params))
        return found

    async def _row(self, name: str, /, **params: Any) -> Row | None:
        found = await self._rows(name, **params)
        return found[0] if found else None

    async def _changed(self, name: str, what: str, /, **params: Any) -> Row:
        """The row a one-row write returned, or ``NotFound`` naming ``what``."""
        row = await self._row(name, **params)
        if row is None:
            raise NotFound(f"{what} does not exist")
        return row

    def _time(self, value: Any) -> datetime:
        return self.store.read_time(value)

    def _maybe_time(self, value: Any) -> datetime | None:
        return None if value is None else self.store.read_time(value)

    def _live(self, revoked: list[Row], now: datetime) -> int:
        """How many of the revoked tokens could still have been used."""
        return sum(1 for r in revoked if r["used_at"] is None and self._time(r["expires_at"]) > now)

    # -- rows into records ----------------------------------------------------------

    def _tenant(self, row: Row) -> Tenant:
        return Tenant(
            id=row["id"],
            name=row["name"],
            status=TenantStatus(row["status"]),
            allow_signup=bool(row["allow_signup"]),
            created_at=self._time(row["created_at"]),
        )

    def _user(self, row: Row) -> User:
        return User(
            id=row["id"],
            email=row["email"],
            name=row["name"],
            password_hash=row["password_hash"],
            is_admin=bool(row["is_admin"]),
            time_zone=row["time_zone"],
            failed_logins=int(row["failed_logins"]),
            locked_until=self._maybe_time(row["locked_until"]),
            password_changed_at=self._time(row["password_changed_at"]),
            created_at=self._time(row["created_at"]),
        )

    def _membership(self, row: Row, created_at: str = "created_at") -> Membership:
        return Membership(
            tenant_id=row["tenant_id"],
            user_id=row["user_id"],
            role=Role(row["role"]),
            created_at=self._time(row[created_at]),
        )

    def _token(self, row: Row) -> RefreshToken:
        return RefreshToken(
            id=row["id"],
            family_id=row["family_id"],
            user_id=row["user_id"],
            tenant_id=row["tenant_id"],
            token_hash=row["token_hash"],
            created_at=self._time(row["created_at"]),
            expires_at=self._time(row["expires_at"]),
            used_at=self._maybe_time(row["used_at"]),
            revoked_at=self._maybe_time(row["revoked_at"]),
        )

    def _key(self, row: Row) -> ApiKey:
        return ApiKey(
            id=row["id"],
            tenant_id=row["tenant_id"],
            name=row["name"],
            prefix=row["prefix"],
            secret_hash=row["secret_hash"],
            scopes=frozenset(Scope(name) for name in row["scopes"].split()),
            created_by=row["created_by"],
            created_at=self._time(row["created_at"]),
            last_used_at=self._maybe_time(row["last_used_at"]),
            revoked_at=self._maybe_time(row["revoked_at"]),
        )

    def _audit(self, row: Row) -> AuditEntry:
        return AuditEntry(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            detail=rows.read_json(row["detail"]) or {},
            ip=row["ip"],
            created_at=self._time(row["created_at"]),
        )

    # -- tenants ------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Add a tenant; ``Conflict`` if the id is taken."""
        with _reworded(Conflict, f"a tenant with the id {tenant.id!r} already exists"):
            row = await self._changed(
                "insert_tenant",
                "the tenant",
                id=tenant.id,
                name=tenant.name,
                status=tenant.status.value,
                allow_signup=tenant.allow_signup,
                created_at=tenant.created_at,
            )
        return self._tenant(row)

    async def get_tenant(self, tenant_id: str) -> Tenant:
        """One tenant, or ``NotFound``."""
        row = await self._row("get_tenant", id=tenant_id)
        if row is None:
            raise NotFound(f"tenant {tenant_id!r} does not exist")
        return self._tenant(row)

    async def list_tenants(self) -> list[Tenant]:
        """Every tenant, by id."""
        return [self._tenant(row) for row in await self._rows("list_tenants")]

    async def set_tenant_status(self, tenant_id: str, status: TenantStatus) -> Tenant:
        """Suspend or reactivate a tenant; ``NotFound`` if it does not exist."""
        what = f"tenant {tenant_id!r}"
        row = await self._changed("set_tenant_status", what, id=tenant_id, status=status.value)
        return self._tenant(row)

    async def delete_tenant(self, tenant_id: str) -> None:
        """Remove a tenant and everything it owns, in one transaction; ``NotFound``."""
        key = {"tenant_id": tenant_id}
        *_, deleted = await self._run(*((name, key) for name in _TENANT_DELETES))
        if not deleted:
            raise NotFound(f"tenant {tenant_id!r} does not exist")

    async def tenant_usage(self, tenant_id: str, since: datetime, until: datetime) -> TenantUsage:
        """Jobs by state, run seconds and storage of one tenant in a window."""
        window = {"tenant_id": tenant_id, "since": since, "until": until}
        # Three scans read side by side (each its own connection on PostgreSQL): the
        # numbers are a report, they need not come from one snapshot.
        states, (run,), (kept,) = await asyncio.gather(
            self._rows("usage_jobs_by_state", **window),
            self._rows("tenant_run_seconds", **window),
            self._rows("tenant_storage_bytes", tenant_id=tenant_id),
        )
        return TenantUsage(
            tenant_id=tenant_id,
            since=since,
            until=until,
            jobs_by_state={r["state"]: int(r["n"]) for r in states},
            run_seconds=float(run["run_seconds"]),
            storage_bytes=int(kept["storage_bytes"]),
        )

    # -- users and memberships ---------------------------------------------------

    async def create_user(self, user: User) -> User:
        """Add a user; ``Conflict`` if the email is taken."""
        with _reworded(Conflict, "a user with this email already exists"):
            row = await self._changed(
                "insert_user",
                "the user",
                id=user.id,
                email=user.email,
                name=user.name,
                password_hash=user.password_hash,
                is_admin=user.is_admin,
                time_zone=user.time_zone,
                failed_logins=user.failed_logins,
                locked_until=user.locked_until,
                password_changed_at=user.password_changed_at,
                created_at=user.created_at,
            )
        return self._user(row)

    async def get_user(self, user_id: str) -> User:
        """One user, or ``NotFound``."""
        row = await self._row("get_user", id=user_id)
        if row is None:
            raise NotFound(f"user {user_id!r} does not exist")
        return self._user(row)

    async def find_user_by_email(self, email: str) -> User | None:
        """The user with this (normalized) email, if any."""
        row = await self._row("user_by_email", email=email)
        return None if row is None else self._user(row)

    async def count_users(self) -> int:
        """How many users exist (0 on a new server)."""
        row = await self._row("count_users")
        return int(row["n"]) if row else 0

    async def record_login_failure(
        self, user_id: str, failed_logins: int, locked_until: datetime | None
    ) -> None:
        """Store the failure count and lockout after a wrong password; ``NotFound``."""
        await self._changed(
            "record_login_failure",
            f"user {user_id!r}",
            id=user_id,
            failed_logins=failed_logins,
            locked_until=locked_until,
        )

    async def record_login_success(self, user_id: str) -> None:
        """Clear the failure count and lockout; ``NotFound`` for an unknown user."""
        await self._changed("record_login_success", f"user {user_id!r}", id=user_id)

    async def set_password(self, user_id: str, password_hash: str, changed_at: datetime) -> int:
        """Replace a password hash and revoke every refresh token of the user, in one
        transaction; return how many tokens were revoked (live ones; ``NotFound``)."""
        changed, revoked = await self._run(
            (
                "set_password",
                {"id": user_id, "password_hash": password_hash, "changed_at": changed_at},
            ),
            ("revoke_user_tokens", {"user_id": user_id, "now": changed_at}),
        )
        if not changed:
            raise NotFound(f"user {user_id!r} does not exist")
        return self._live(revoked, changed_at)

    async def add_membership(self, membership: Membership) -> Membership:
        """Give a user a role in a tenant (replacing an earlier role); ``NotFound``
        if the tenant or the user does not exist."""
        with _reworded(NotFound, "the tenant or the user does not exist"):
            row = await self._changed(
                "upsert_membership",
                "the membership",
                tenant_id=membership.tenant_id,
                user_id=membership.user_id,
                role=membership.role.value,
                created_at=membership.created_at,
            )
        return self._membership(row)

    async def get_membership(self, tenant_id: str, user_id: str) -> Membership | None:
        """A user's role in a tenant, if any."""
        row = await self._row("get_membership", tenant_id=tenant_id, user_id=user_id)
        return None if row is None else self._membership(row)

    async def list_memberships(self, user_id: str) -> list[Membership]:
        """Every tenant a user belongs to, by tenant id."""
        return [self._membership(r) for r in await self._rows("list_memberships", user_id=user_id)]

    async def list_members(self, tenant_id: str) -> list[tuple[User, Membership]]:
        """The users of a tenant with their roles, by email."""
        found = await self._rows("list_members", tenant_id=tenant_id)
        return [(self._user(r), self._membership(r, "member_since")) for r in found]

    async def change_role(self, tenant_id: str, user_id: str, role: Role) -> Membership:
        """Give a member another role; ``NotFound`` if not a member, ``Conflict`` if it
        would leave the tenant without an owner (checked and written atomically)."""
        key = {"tenant_id": tenant_id, "user_id": user_id}
        _, changed = await self._run(
            ("lock_tenant", {"tenant_id": tenant_id}),
            ("change_role_keeping_an_owner", {**key, "role": role.value}),
        )
        if not changed:
            await self._refused(tenant_id, user_id)
        return self._membership(changed[0])

    async def remove_membership(self, tenant_id: str, user_id: str) -> None:
        """Take a user out of a tenant (revoking its sessions there); ``NotFound``, or
        ``Conflict`` if it is the tenant's last owner (checked and written atomically)."""
        key = {"tenant_id": tenant_id, "user_id": user_id}
        _, removed, _ = await self._run(
            ("lock_tenant", {"tenant_id": tenant_id}),
            ("delete_membership_keeping_an_owner", key),
            ("revoke_member_tokens", {**key, "now": self.store.clock()}),
        )
        if not removed:
            await self._refused(tenant_id, user_id)

    async def _refused(self, tenant_id: str, user_id: str) -> None:
        """Why a guarded change to a membership changed nothing: raise it."""
        if await self.get_membership(tenant_id, user_id) is None:
            raise NotFound(f"user {user_id!r} is not a member of tenant {tenant_id!r}")
        raise Conflict("the tenant needs at least one owner: make someone else owner first")

    # -- refresh tokens ------------------------------------------------------------

    async def add_refresh_token(self, token: RefreshToken) -> None:
        """Store a new refresh token (only its hash); ``NotFound`` for an unknown
        user or tenant."""
        await self._rows(
            "insert_refresh_token",
            id=token.id,
            family_id=token.family_id,
            user_id=token.user_id,
            tenant_id=token.tenant_id,
            token_hash=token.token_hash,
            created_at=token.created_at,
            expires_at=token.expires_at,
            used_at=token.used_at,
            revoked_at=token.revoked_at,
        )

    async def get_refresh_token(self, token_id: str) -> RefreshToken | None:
        """A refresh token by id, used or not."""
        row = await self._row("get_refresh_token", id=token_id)
        return None if row is None else self._token(row)

    async def use_refresh_token(self, token_id: str, now: datetime) -> bool:
        """Mark an unused, unrevoked, unexpired token used (compare-and-set);
        ``False`` if it was not in that state."""
        return await self._row("use_refresh_token", id=token_id, now=now) is not None

    async def revoke_token_family(self, family_id: str, now: datetime) -> int:
        """Revoke every token of a session; return how many were still live."""
        revoked = await self._rows("revoke_token_family", family_id=family_id, now=now)
        return self._live(revoked, now)

    async def revoke_user_tokens(self, user_id: str, now: datetime) -> int:
        """Revoke every session of a user; return how many tokens were still live."""
        revoked = await self._rows("revoke_user_tokens", user_id=user_id, now=now)
        return self._live(revoked, now)

    # -- API keys ----------------------------------------------------------------------

    async def create_api_key(self, key: ApiKey) -> ApiKey:
        """Store a new key (only its hash); ``Conflict`` if the prefix is taken."""
        with _reworded(Conflict, "an API key with this prefix already exists"):
            row = await self._changed(
                "insert_api_key",
                "the API key",
                id=key.id,
                tenant_id=key.tenant_id,
                name=key.name,
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                scopes=" ".join(sorted(scope.value for scope in key.scopes)),
                created_by=key.created_by,
                created_at=key.created_at,
                last_used_at=key.last_used_at,
                revoked_at=key.revoked_at,
            )
        return self._key(row)

    async def find_api_key(self, prefix: str) -> ApiKey | None:
        """A key by its visible prefix, revoked or not."""
        row = await self._row("api_key_by_prefix", prefix=prefix)
        return None if row is None else self._key(row)

    async def list_api_keys(self, tenant_id: str) -> list[ApiKey]:
        """A tenant's keys, newest first."""
        return [self._key(r) for r in await self._rows("list_api_keys", tenant_id=tenant_id)]

    async def revoke_api_key(self, tenant_id: str, key_id: str, now: datetime) -> ApiKey:
        """Revoke a key of this tenant (again: keeps the first time); ``NotFound`` if
        the tenant has no such key."""
        row = await self._changed(
            "revoke_api_key", f"API key {key_id!r}", tenant_id=tenant_id, id=key_id, now=now
        )
        return self._key(row)

    async def touch_api_key(self, key_id: str, now: datetime) -> None:
        """Record when a key was last used (a key deleted meanwhile is ignored)."""
        await self._rows("touch_api_key", id=key_id, now=now)

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
        record = AuditRecord(tenant_id, actor, action, target, detail, ip, now)
        row = await self._changed("insert_audit", "the audit entry", **_audit_params(record))
        return self._audit(row)

    async def add_audit_entries(self, records: Sequence[AuditRecord]) -> int:
        """Append several entries in one transaction, in order, a few hundred rows per
        statement (one round trip each, not one per entry); return how many."""
        steps = []
        for start in range(0, len(records), AUDIT_ROWS_PER_INSERT):
            chunk = records[start : start + AUDIT_ROWS_PER_INSERT]
            params = {
                f"{name}_{i}": value
                for i, record in enumerate(chunk)
                for name, value in _audit_params(record).items()
            }
            steps.append((_audit_insert(self.store.dialect, len(chunk)), params))
        if steps:
            await self.store.run_sql(steps, write=True)
        return len(records)

    async def list_audit(
        self,
        tenant_id: str | None,
        after_id: int = 0,
        limit: int = 100,
        since: datetime | None = None,
    ) -> list[AuditEntry]:
        """Audit entries after a cursor, oldest first; ``None``: every tenant."""
        # No "param IS NULL" tests: PostgreSQL cannot type a NULL parameter there.
        params = {"after_id": after_id, "limit": limit, "since": since or _EPOCH}
        if tenant_id is None:
            found = await self._rows("list_audit_all", **params)
        else:
            found = await self._rows("list_audit", tenant_id=tenant_id, **params)
        return [self._audit(r) for r in found]

    async def prune_audit(self, before: datetime) -> int:
        """Delete entries older than ``before``; return how many."""
        return len(await self._rows("prune_audit", before=before))

    async def signing_keys(self) -> list[tuple[str, str, datetime]]:
        """The token signing keys ``(kid, secret, created_at)``, newest first. A key
        whose secret does not open with this server's key is left out (and logged once):
        the tokens it signed are refused, and their holders sign in again. When keys
        are stored but none opens, ``UnreadableSigningKeys``: a new key made then would
        not be the one the other nodes sign with."""
        box = required_box(self._box, self)
        keys, unreadable = [], []
        for row in await self._rows("list_signing_keys"):
            try:
                keys.append((row["kid"], box.open(row["secret"]), self._time(row["created_at"])))
            except UnreadableSecret:
                unreadable.append(row["kid"])
        if unreadable and not keys:
            raise UnreadableSigningKeys(len(unreadable))
        for kid in unreadable:
            box.report_unreadable(f"signing key {kid}")
        return keys

    async def check_key(self, now: datetime, *, take_over: bool = False) -> None:
        """Make sure this store's box holds the key that seals the database's secrets;
        ``WrongSecretKey`` if not. The first caller records the check with its key.

        With ``take_over`` (a server starting with a new key and the old one as
        previous) the check is sealed with the new key, by one node only: another node
        that took it over first must have done so with this same key.
        """
        box = required_box(self._box, self)
        await self._rows("insert_key_check", sealed=box.seal(KEY_CHECK), now=now)
        stored = await self._key_check(box)
        if not take_over or box.is_current(stored):
            return
        taken = await self._rows(
            "reseal_key_check", sealed_value=box.seal(KEY_CHECK), stored=stored
        )
        if not taken and not box.is_current(await self._key_check(box)):
            raise WrongSecretKey()  # another node took it over with another key

    async def _key_check(self, box: SecretBox) -> str:
        """The stored check, which ``box`` must open; ``WrongSecretKey`` if it does not."""
        row = await self._row("get_key_check")
        stored = "" if row is None else str(row["sealed"])
        try:
            opened = box.open(stored)
        except UnreadableSecret:
            raise WrongSecretKey() from None
        if opened != KEY_CHECK:
            raise WrongSecretKey()
        return stored

    async def seal_secrets(self) -> int:
        """See :func:`~conveyor.store.sealing.seal_secrets`; how many it sealed."""
        queries = [(self._sql["stored_signing_key"], self._sql["seal_signing_key"])]
        return await seal_secrets(self.store, required_box(self._box, self), queries)

    async def add_signing_key(self, kid: str, secret: str, now: datetime) -> None:
        """Store a signing key (kept so every server node signs and verifies alike);
        ``Conflict`` if the kid is taken."""
        with _reworded(Conflict, f"a signing key with the kid {kid!r} already exists"):
            sealed = required_box(self._box, self).seal(secret)
            await self._rows("insert_signing_key", kid=kid, secret=sealed, now=now)


@functools.lru_cache(maxsize=64)
def _audit_insert(dialect: str, rows_count: int) -> str:
    """One INSERT of ``rows_count`` audit entries, whose parameters are those of
    :func:`_audit_params` suffixed with ``_<row>``."""
    columns = ("tenant_id", "actor", "action", "target", "detail", "ip", "now")
    values = ", ".join(
        "(" + ", ".join(f":{column}_{i}" for column in columns) + ")" for i in range(rows_count)
    )
    sql = (
        "INSERT INTO audit_log (tenant_id, actor, action, target, detail, ip, created_at) "
        f"VALUES {values}"
    )
    return to_dialect(sql, dialect)


def _audit_params(record: AuditRecord) -> dict[str, Any]:
    return {
        "tenant_id": record.tenant_id,
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "detail": rows.dump_json(dict(record.detail)),
        "ip": record.ip,
        "now": record.created_at,
    }
