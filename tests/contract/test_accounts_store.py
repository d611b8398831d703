"""The AccountStore contract: every case runs on SQLite and on PostgreSQL.

Times come from the ``clock`` fixture (whole seconds), so they round-trip exactly
through SQLite's epoch seconds and PostgreSQL's timestamptz.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

import pytest

from conveyor.domain.accounts import (
    PLATFORM_TENANT,
    ApiKey,
    AuditRecord,
    Membership,
    RefreshToken,
    Role,
    Scope,
    Tenant,
    TenantStatus,
    User,
)
from conveyor.domain.errors import Conflict, NotFound
from conveyor.domain.jobs import Job, JobFilter, NewJob, new_job
from conveyor.domain.outcomes import Completed, decide
from conveyor.domain.retry import Backoff
from conveyor.store import accounts_for
from conveyor.store.accounts_protocol import AccountStore
from conveyor.store.protocol import Store, WorkerInfo
from conveyor.store.sealing import SecretBox, UnreadableSigningKeys, WrongSecretKey, is_sealed
from tests.contract.conftest import BOX, FakeClock

pytestmark = pytest.mark.anyio

ACME = "acme"
OTHER = "default"


@pytest.fixture
def accounts(store: Store) -> AccountStore:
    return accounts_for(store, BOX)


def tenant(tenant_id: str, now: datetime, **fields: object) -> Tenant:
    values: dict[str, object] = {
        "id": tenant_id,
        "name": tenant_id.title(),
        "status": TenantStatus.ACTIVE,
        "allow_signup": False,
        "created_at": now,
        **fields,
    }
    return Tenant(**values)  # type: ignore[arg-type]


def user(email: str, now: datetime, **fields: object) -> User:
    values: dict[str, object] = {
        "id": f"u-{email.split('@')[0]}",
        "email": email,
        "name": email.split("@")[0].title(),
        "password_hash": "$argon2id$hash",
        "is_admin": False,
        "time_zone": "UTC",
        "failed_logins": 0,
        "locked_until": None,
        "password_changed_at": now,
        "created_at": now,
        **fields,
    }
    return User(**values)  # type: ignore[arg-type]


def api_key(key_id: str, tenant_id: str, now: datetime, prefix: str | None = None) -> ApiKey:
    return ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        name=f"key {key_id}",
        prefix=prefix or f"cvk_{key_id}",
        secret_hash=hashlib.sha256(key_id.encode()).hexdigest(),
        scopes=frozenset({Scope.JOBS_READ, Scope.JOBS_WORK}),
        created_by="user:ann@example.com",
        created_at=now,
    )


def token(
    token_id: str, user_id: str, now: datetime, *, family: str = "f1", tenant_id: str = ACME
) -> RefreshToken:
    return RefreshToken(
        id=token_id,
        family_id=family,
        user_id=user_id,
        tenant_id=tenant_id,
        token_hash=f"hash-{token_id}",
        created_at=now,
        expires_at=now + timedelta(days=30),
    )


async def member(
    accounts: AccountStore, email: str, tenant_id: str, now: datetime, role: Role = Role.MEMBER
) -> User:
    """A user (created if new) with a role in ``tenant_id``."""
    found = await accounts.find_user_by_email(email)
    created = found or await accounts.create_user(user(email, now))
    await accounts.add_membership(Membership(tenant_id, created.id, role, now))
    return created


async def run_job(store: Store, clock: FakeClock, job: Job, seconds: float, result: object) -> None:
    """Claim ``job`` (the next available one of its tenant), run it ``seconds``, complete it."""
    (claimed,) = await store.claim(job.tenant_id, job.queue, "worker-1", 1, 300)
    assert claimed.id == job.id
    clock.advance(seconds)
    finish = decide(
        Completed(result),
        job_id=claimed.id,
        attempt=claimed.attempt,
        max_attempts=claimed.max_attempts,
        backoff=Backoff(base=1, factor=2, cap=10, jitter=0),
        now=clock(),
    )
    assert await store.finish([finish]) == [True]


# -- tenants ------------------------------------------------------------------------------


async def test_tenants_are_created_listed_and_suspended(
    accounts: AccountStore, clock: FakeClock
) -> None:
    created = await accounts.create_tenant(tenant(ACME, clock(), allow_signup=True))
    assert created == tenant(ACME, clock(), allow_signup=True)
    assert await accounts.get_tenant(ACME) == created
    assert [t.id for t in await accounts.list_tenants()] == [ACME, "default"]
    assert (await accounts.get_tenant("default")).allow_signup is False

    suspended = await accounts.set_tenant_status(ACME, TenantStatus.SUSPENDED)
    assert suspended.status is TenantStatus.SUSPENDED
    assert (await accounts.get_tenant(ACME)).status is TenantStatus.SUSPENDED
    active = await accounts.set_tenant_status(ACME, TenantStatus.ACTIVE)
    assert active.status is TenantStatus.ACTIVE


async def test_a_taken_tenant_id_conflicts_and_a_missing_one_is_not_found(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    with pytest.raises(Conflict, match=r"tenant .*already exists"):
        await accounts.create_tenant(tenant(ACME, clock(), name="Again"))
    assert (await accounts.get_tenant(ACME)).name == "Acme"
    with pytest.raises(NotFound):
        await accounts.get_tenant("nope")
    with pytest.raises(NotFound):
        await accounts.set_tenant_status("nope", TenantStatus.SUSPENDED)
    with pytest.raises(NotFound):
        await accounts.delete_tenant("nope")


# -- users and memberships ------------------------------------------------------------------


async def test_users_are_created_found_and_counted(
    accounts: AccountStore, clock: FakeClock
) -> None:
    assert await accounts.count_users() == 0
    ann = await accounts.create_user(user("ann@example.com", clock(), is_admin=True))
    assert ann == user("ann@example.com", clock(), is_admin=True)
    assert await accounts.get_user(ann.id) == ann
    assert await accounts.find_user_by_email("ann@example.com") == ann
    assert await accounts.find_user_by_email("bob@example.com") is None
    assert await accounts.count_users() == 1

    with pytest.raises(Conflict, match="email already exists"):
        await accounts.create_user(user("ann@example.com", clock(), id="u-other"))
    with pytest.raises(NotFound):
        await accounts.get_user("u-nobody")
    assert await accounts.count_users() == 1


async def test_lockout_fields_round_trip(accounts: AccountStore, clock: FakeClock) -> None:
    ann = await accounts.create_user(user("ann@example.com", clock()))
    locked = clock() + timedelta(seconds=30)
    await accounts.record_login_failure(ann.id, 5, locked)
    stored = await accounts.get_user(ann.id)
    assert (stored.failed_logins, stored.locked_until) == (5, locked)

    await accounts.record_login_success(ann.id)
    stored = await accounts.get_user(ann.id)
    assert (stored.failed_logins, stored.locked_until) == (0, None)

    with pytest.raises(NotFound):
        await accounts.record_login_failure("u-nobody", 1, None)
    with pytest.raises(NotFound):
        await accounts.record_login_success("u-nobody")


async def test_memberships_are_added_replaced_listed_and_removed(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    bob = await member(accounts, "bob@example.com", ACME, clock(), Role.AGENT)
    ann = await member(accounts, "ann@example.com", ACME, clock(), Role.OWNER)
    await member(accounts, "ann@example.com", OTHER, clock())

    replaced = await accounts.add_membership(Membership(ACME, bob.id, Role.MEMBER, clock()))
    assert replaced == Membership(ACME, bob.id, Role.MEMBER, clock())
    assert await accounts.get_membership(ACME, bob.id) == replaced
    assert await accounts.get_membership(OTHER, bob.id) is None
    assert [m.tenant_id for m in await accounts.list_memberships(ann.id)] == [ACME, OTHER]

    members = await accounts.list_members(ACME)
    assert [(u.email, m.role) for u, m in members] == [
        ("ann@example.com", Role.OWNER),
        ("bob@example.com", Role.MEMBER),
    ]
    assert members[0] == (ann, Membership(ACME, ann.id, Role.OWNER, clock()))
    assert [u.email for u, _ in await accounts.list_members(OTHER)] == ["ann@example.com"]

    await accounts.remove_membership(ACME, bob.id)
    assert await accounts.get_membership(ACME, bob.id) is None
    with pytest.raises(NotFound):
        await accounts.remove_membership(ACME, bob.id)


async def test_a_tenant_keeps_at_least_one_owner(accounts: AccountStore, clock: FakeClock) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    ann = await member(accounts, "ann@example.com", ACME, clock(), Role.OWNER)
    bob = await member(accounts, "bob@example.com", ACME, clock(), Role.MEMBER)
    await accounts.add_refresh_token(token("t-ann", ann.id, clock(), family="fa"))
    with pytest.raises(Conflict):
        await accounts.change_role(ACME, ann.id, Role.MEMBER)
    with pytest.raises(Conflict):
        await accounts.remove_membership(ACME, ann.id)
    assert (await accounts.get_membership(ACME, ann.id)) == Membership(
        ACME, ann.id, Role.OWNER, clock()
    )
    assert await accounts.use_refresh_token("t-ann", clock())  # a refused removal revokes nothing
    promoted = await accounts.change_role(ACME, bob.id, Role.OWNER)
    assert promoted.role is Role.OWNER
    assert (await accounts.change_role(ACME, ann.id, Role.AGENT)).role is Role.AGENT
    with pytest.raises(NotFound):
        await accounts.change_role(ACME, "u-nobody", Role.OWNER)
    with pytest.raises(Conflict):
        await accounts.remove_membership(ACME, bob.id)


async def test_two_owners_stepping_down_at_once_leave_one(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    owners = [
        await member(accounts, f"{name}@example.com", ACME, clock(), Role.OWNER)
        for name in ("ann", "bob")
    ]
    results = await asyncio.gather(
        *(accounts.change_role(ACME, owner.id, Role.MEMBER) for owner in owners),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Membership"]
    roles = [m.role for _, m in await accounts.list_members(ACME)]
    assert roles.count(Role.OWNER) == 1


async def test_a_membership_needs_an_existing_tenant_and_user(
    accounts: AccountStore, clock: FakeClock
) -> None:
    ann = await accounts.create_user(user("ann@example.com", clock()))
    with pytest.raises(NotFound):
        await accounts.add_membership(Membership("nope", ann.id, Role.MEMBER, clock()))
    with pytest.raises(NotFound):
        await accounts.add_membership(Membership(OTHER, "u-nobody", Role.MEMBER, clock()))


async def test_removing_a_membership_revokes_sessions_in_that_tenant_only(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    ann = await member(accounts, "ann@example.com", ACME, clock())
    await member(accounts, "ann@example.com", OTHER, clock())
    await accounts.add_refresh_token(token("t-acme", ann.id, clock(), family="fa"))
    await accounts.add_refresh_token(
        token("t-other", ann.id, clock(), family="fo", tenant_id=OTHER)
    )

    await accounts.remove_membership(ACME, ann.id)
    assert not await accounts.use_refresh_token("t-acme", clock())
    assert await accounts.use_refresh_token("t-other", clock())


# -- refresh tokens -----------------------------------------------------------------------------


async def test_a_refresh_token_is_used_at_most_once(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    ann = await member(accounts, "ann@example.com", ACME, clock())
    await accounts.add_refresh_token(token("t1", ann.id, clock()))
    assert await accounts.get_refresh_token("t1") == token("t1", ann.id, clock())

    used_at = clock.advance(5)
    assert await accounts.use_refresh_token("t1", used_at) is True
    assert await accounts.use_refresh_token("t1", clock.advance(1)) is False
    stored = await accounts.get_refresh_token("t1")
    assert stored is not None and stored.used_at == used_at and stored.revoked_at is None
    assert await accounts.use_refresh_token("t-unknown", clock()) is False
    assert await accounts.get_refresh_token("t-unknown") is None


async def test_an_expired_or_revoked_refresh_token_cannot_be_used(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    ann = await member(accounts, "ann@example.com", ACME, clock())
    await accounts.add_refresh_token(token("old", ann.id, clock(), family="f-old"))
    await accounts.add_refresh_token(token("gone", ann.id, clock(), family="f-gone"))

    assert await accounts.revoke_token_family("f-gone", clock()) == 1
    assert await accounts.use_refresh_token("gone", clock()) is False
    expiry = clock() + timedelta(days=30)
    assert await accounts.use_refresh_token("old", expiry) is False
    assert await accounts.use_refresh_token("old", expiry - timedelta(seconds=1)) is True


async def test_revoking_a_family_or_a_user_counts_the_live_tokens(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    ann = await member(accounts, "ann@example.com", ACME, clock())
    bob = await member(accounts, "bob@example.com", ACME, clock())
    for name in ("a1", "a2", "a3"):
        await accounts.add_refresh_token(token(name, ann.id, clock(), family="fa"))
    await accounts.add_refresh_token(token("a4", ann.id, clock(), family="fb"))
    await accounts.add_refresh_token(token("b1", bob.id, clock(), family="fc"))
    await accounts.use_refresh_token("a1", clock())  # used: no longer live

    assert await accounts.revoke_token_family("fa", clock()) == 2
    assert await accounts.revoke_token_family("fa", clock()) == 0
    revoked = await accounts.get_refresh_token("a1")
    assert revoked is not None and revoked.revoked_at == clock()
    assert await accounts.revoke_user_tokens(ann.id, clock()) == 1  # a4
    assert await accounts.revoke_user_tokens(ann.id, clock()) == 0
    assert await accounts.use_refresh_token("b1", clock()) is True


async def test_setting_a_password_revokes_every_session(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    ann = await member(accounts, "ann@example.com", ACME, clock())
    await accounts.add_refresh_token(token("t1", ann.id, clock(), family="f1"))
    await accounts.add_refresh_token(token("t2", ann.id, clock(), family="f2"))

    changed_at = clock.advance(60)
    assert await accounts.set_password(ann.id, "$argon2id$new", changed_at) == 2
    stored = await accounts.get_user(ann.id)
    assert (stored.password_hash, stored.password_changed_at) == ("$argon2id$new", changed_at)
    assert await accounts.use_refresh_token("t1", clock()) is False
    assert await accounts.set_password(ann.id, "$argon2id$newer", clock()) == 0
    with pytest.raises(NotFound):
        await accounts.set_password("u-nobody", "$argon2id$x", clock())


# -- API keys ---------------------------------------------------------------------------------


async def test_api_keys_are_stored_found_listed_and_revoked(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    first = await accounts.create_api_key(api_key("k1", ACME, clock()))
    assert first == api_key("k1", ACME, clock())
    second = await accounts.create_api_key(api_key("k2", ACME, clock.advance(1)))
    await accounts.create_api_key(api_key("k3", OTHER, clock()))

    assert await accounts.find_api_key("cvk_k1") == first
    assert await accounts.find_api_key("cvk_nope") is None
    assert await accounts.list_api_keys(ACME) == [second, first]
    assert [k.id for k in await accounts.list_api_keys(OTHER)] == ["k3"]

    used = clock.advance(5)
    await accounts.touch_api_key("k1", used)
    revoked = await accounts.revoke_api_key(ACME, "k1", clock.advance(5))
    assert (revoked.last_used_at, revoked.revoked_at) == (used, clock())
    again = await accounts.revoke_api_key(ACME, "k1", clock.advance(5))
    assert again.revoked_at == revoked.revoked_at
    assert await accounts.find_api_key("cvk_k1") == revoked


async def test_api_key_conflicts_and_other_tenants_keys(
    accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    await accounts.create_api_key(api_key("k1", ACME, clock()))
    with pytest.raises(Conflict, match="prefix already exists"):
        await accounts.create_api_key(api_key("k2", OTHER, clock(), prefix="cvk_k1"))
    with pytest.raises(NotFound):
        await accounts.revoke_api_key(OTHER, "k1", clock())
    with pytest.raises(NotFound):
        await accounts.create_api_key(api_key("k3", "nope", clock()))
    assert (await accounts.list_api_keys(ACME))[0].revoked_at is None


# -- audit log and signing keys ---------------------------------------------------------------


async def test_audit_entries_are_listed_by_tenant_in_order_after_a_cursor(
    accounts: AccountStore, clock: FakeClock
) -> None:
    start = clock()
    entries = []
    for i, tenant_id in enumerate([ACME, OTHER, ACME, PLATFORM_TENANT, ACME]):
        entries.append(
            await accounts.add_audit(
                tenant_id, "user:ann", "key.create", f"key:{i}", {"n": i}, "10.0.0.1", clock()
            )
        )
        clock.advance(10)
    assert entries[0].detail == {"n": 0} and entries[0].created_at == start
    assert entries[0].ip == "10.0.0.1"

    acme = await accounts.list_audit(ACME)
    assert acme == [entries[0], entries[2], entries[4]]
    assert await accounts.list_audit(OTHER) == [entries[1]]
    assert await accounts.list_audit(None) == entries
    assert await accounts.list_audit(ACME, after_id=entries[0].id) == [entries[2], entries[4]]
    assert await accounts.list_audit(ACME, limit=1) == [entries[0]]
    since = start + timedelta(seconds=20)
    assert await accounts.list_audit(ACME, since=since) == [entries[2], entries[4]]
    assert await accounts.list_audit(None, since=since) == entries[2:]

    assert await accounts.prune_audit(since) == 2
    assert await accounts.list_audit(None) == entries[2:]
    assert await accounts.prune_audit(since) == 0


async def test_many_audit_entries_are_written_at_once_in_order(
    accounts: AccountStore, clock: FakeClock
) -> None:
    records = [
        AuditRecord(
            ACME if i % 3 else OTHER,
            f"user:{i}",
            "job.create",
            f"job:{i}",
            {"n": i, "text": 'it\'s "quoted"'},
            None if i % 2 else "10.0.0.1",
            clock.advance(1),
        )
        for i in range(450)  # more than one statement's worth
    ]
    assert await accounts.add_audit_entries(records) == 450
    assert await accounts.add_audit_entries([]) == 0
    stored = await accounts.list_audit(None, limit=1000)
    assert [(e.tenant_id, e.actor, e.target, e.ip, e.created_at) for e in stored] == [
        (r.tenant_id, r.actor, r.target, r.ip, r.created_at) for r in records
    ]
    assert [e.detail for e in stored] == [dict(r.detail) for r in records]
    assert [e.id for e in stored] == sorted(e.id for e in stored)


async def test_signing_keys_come_newest_first(accounts: AccountStore, clock: FakeClock) -> None:
    assert await accounts.signing_keys() == []
    first = clock()
    await accounts.add_signing_key("kid-1", "secret-1", first)
    second = clock.advance(60)
    await accounts.add_signing_key("kid-2", "secret-2", second)
    assert await accounts.signing_keys() == [
        ("kid-2", "secret-2", second),
        ("kid-1", "secret-1", first),
    ]
    with pytest.raises(Conflict):
        await accounts.add_signing_key("kid-1", "other", clock())


async def test_signing_keys_are_kept_sealed_and_plain_ones_get_sealed(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.add_signing_key("kid-1", "secret-1", clock())
    insert = (
        "INSERT INTO signing_keys (kid, secret, created_at)"
        " SELECT 'kid-0', 'secret-0', created_at FROM signing_keys"
    )
    await store.run_sql([(insert, {})])
    assert await accounts.seal_secrets() == 1
    [[first], [second]] = await store.run_sql(
        [
            (f"SELECT secret FROM signing_keys WHERE kid = '{kid}'", {})
            for kid in ("kid-0", "kid-1")
        ],
        write=False,
    )
    assert is_sealed(first["secret"]) and is_sealed(second["secret"])
    assert sorted(secret for _, secret, _ in await accounts.signing_keys()) == [
        "secret-0",
        "secret-1",
    ]
    with pytest.raises(UnreadableSigningKeys, match="none of the 2 token signing keys"):
        await accounts_for(store, SecretBox("another node's key")).signing_keys()


async def test_a_signing_key_that_does_not_open_is_left_out(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.add_signing_key("kid-1", "secret-1", clock())
    await accounts_for(store, SecretBox("another node's key")).add_signing_key(
        "kid-2", "secret-2", clock.advance(60)
    )
    # the newest does not open: left out (its tokens are refused), never a failure
    assert [(kid, secret) for kid, secret, _ in await accounts.signing_keys()] == [
        ("kid-1", "secret-1")
    ]


async def test_the_first_key_to_check_is_the_only_one_that_passes(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.check_key(clock())
    await accounts.check_key(clock())
    [[check]] = await store.run_sql([("SELECT sealed FROM key_check", {})], write=False)
    assert is_sealed(check["sealed"])
    with pytest.raises(WrongSecretKey, match="CONVEYOR_SECRET_KEY"):
        await accounts_for(store, SecretBox("another node's key")).check_key(clock())
    [[unchanged]] = await store.run_sql([("SELECT sealed FROM key_check", {})], write=False)
    assert unchanged == check


async def test_a_new_key_with_the_old_as_previous_takes_over_the_check(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.check_key(clock())
    await accounts.add_signing_key("kid-1", "secret-1", clock())
    old_key = "the contract suite's secret key"
    changing = accounts_for(store, SecretBox("the new key", [old_key]))
    await changing.check_key(clock())  # a check alone (a command) takes nothing over
    await accounts.check_key(clock())
    await changing.check_key(clock(), take_over=True)
    assert await changing.seal_secrets() == 1
    await changing.check_key(clock(), take_over=True)  # again: nothing to take
    rival = accounts_for(store, SecretBox("a rival new key", [old_key]))
    with pytest.raises(WrongSecretKey):
        await rival.check_key(clock(), take_over=True)
    with pytest.raises(WrongSecretKey):
        await accounts.check_key(clock())  # the old key alone no longer passes
    after = accounts_for(store, SecretBox("the new key"))
    await after.check_key(clock())
    assert [secret for _, secret, _ in await after.signing_keys()] == ["secret-1"]


# -- deleting a tenant and its usage -------------------------------------------------------------


async def _fill_tenant(store: Store, accounts: AccountStore, clock: FakeClock, tid: str) -> None:
    """Give a tenant a bit of everything it can own."""
    (done, _) = await store.enqueue(
        [new_job("report.build", tenant_id=tid, now=clock()) for _ in range(2)]
    )
    await store.pause_queue(tid, "other", True)
    (claimed,) = await store.claim(tid, "default", "w", 1, 300)
    await store.add_artifact(claimed.id, claimed.attempt, "out.txt", 10, "ab" * 32, "/tmp/out")
    assert await store.finish(
        [
            decide(
                Completed(),
                job_id=done.id,
                attempt=claimed.attempt,
                max_attempts=claimed.max_attempts,
                backoff=Backoff(base=1, factor=2, cap=10, jitter=0),
                now=clock(),
            )
        ]
    ) == [True]
    now = clock()
    await store.register_worker(WorkerInfo(f"w-{tid}", tid, "host", 1, ("default",), 1, now, now))
    ann = await member(accounts, "ann@example.com", tid, now)
    await accounts.add_refresh_token(token(f"t-{tid}", ann.id, now, family=tid, tenant_id=tid))
    await accounts.create_api_key(api_key(f"k-{tid}", tid, now))
    await accounts.add_audit(tid, "user:ann", "job.enqueue", "job:1", {}, None, now)


async def test_deleting_a_tenant_removes_what_it_owns_and_nothing_else(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    await _fill_tenant(store, accounts, clock, ACME)
    await _fill_tenant(store, accounts, clock, OTHER)

    await accounts.delete_tenant(ACME)

    with pytest.raises(NotFound):
        await accounts.get_tenant(ACME)
    everything = JobFilter(limit=100)
    assert await store.list_jobs(ACME, everything) == []
    assert await store.list_events(ACME) == []
    assert await store.list_queues(ACME) == []
    assert await store.list_workers(ACME) == []
    assert await accounts.list_api_keys(ACME) == []
    assert await accounts.list_members(ACME) == []
    assert await accounts.list_audit(ACME) == []
    assert await accounts.get_refresh_token(f"t-{ACME}") is None

    assert len(await store.list_jobs(OTHER, everything)) == 2
    assert await store.list_events(OTHER) != []
    assert [q.name for q in await store.list_queues(OTHER)] == ["default", "other"]
    assert len(await store.list_workers(OTHER)) == 1
    assert [k.id for k in await accounts.list_api_keys(OTHER)] == [f"k-{OTHER}"]
    assert [u.email for u, _ in await accounts.list_members(OTHER)] == ["ann@example.com"]
    assert len(await accounts.list_audit(OTHER)) == 1
    assert await accounts.get_refresh_token(f"t-{OTHER}") is not None
    assert await accounts.find_user_by_email("ann@example.com") is not None

    with pytest.raises(NotFound):
        await accounts.delete_tenant(ACME)


async def test_the_default_tenant_may_be_deleted_like_any_other(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await _fill_tenant(store, accounts, clock, OTHER)
    await accounts.delete_tenant(OTHER)
    assert await accounts.list_tenants() == []
    assert await store.list_jobs(OTHER, JobFilter(limit=100)) == []


async def test_usage_counts_jobs_run_seconds_and_storage_of_one_tenant(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))
    start = clock()
    payload = "x" * 10  # 12 bytes of JSON text on both databases
    jobs = await store.enqueue(
        [new_job("report.build", payload, tenant_id=ACME, now=start) for _ in range(3)]
    )
    await store.enqueue([new_job("report.build", payload, now=start)])  # another tenant's

    (claimed,) = await store.claim(ACME, "default", "w", 1, 300)
    await store.add_artifact(claimed.id, claimed.attempt, "out.bin", 1000, "ab" * 32, "/tmp/o")
    clock.advance(7)
    finish = decide(
        Completed("ok"),
        job_id=claimed.id,
        attempt=claimed.attempt,
        max_attempts=claimed.max_attempts,
        backoff=Backoff(base=1, factor=2, cap=10, jitter=0),
        now=clock(),
    )
    assert await store.finish([finish]) == [True]
    await run_job(store, clock, jobs[1], 5, "ok")
    clock.advance(100)  # after the window: counted in storage and states, not in run time
    await run_job(store, clock, jobs[2], 30, None)
    await store.enqueue([new_job("report.build", payload, tenant_id=ACME, now=clock())])

    usage = await accounts.tenant_usage(ACME, start, start + timedelta(seconds=60))
    assert usage.tenant_id == ACME
    assert (usage.since, usage.until) == (start, start + timedelta(seconds=60))
    assert dict(usage.jobs_by_state) == {"completed": 3}
    assert usage.run_seconds == pytest.approx(12.0)
    assert usage.storage_bytes == 1000 + 4 * 12 + 2 * len('"ok"')

    later = await accounts.tenant_usage(ACME, start + timedelta(seconds=60), clock.advance(1))
    assert dict(later.jobs_by_state) == {"available": 1}
    assert later.run_seconds == pytest.approx(30.0)
    assert later.storage_bytes == usage.storage_bytes
    assert (await accounts.tenant_usage(OTHER, start, clock())).jobs_by_state == {"available": 1}


async def test_a_message_id_is_known_per_tenant_within_one_batch(
    store: Store, accounts: AccountStore, clock: FakeClock
) -> None:
    await accounts.create_tenant(tenant(ACME, clock()))

    def batch(version: int) -> list[NewJob]:
        return [
            new_job("t", {"v": version}, tenant_id=tid, message_id=f"m-{n}", now=clock())
            for n in range(50)
            for tid in (ACME, OTHER)
        ]

    first = await store.enqueue(batch(1))
    again = await store.enqueue([*batch(2), new_job("t", {"v": 2}, tenant_id=ACME, now=clock())])

    assert len({job.id for job in first}) == 100
    assert [job.id for job in again[:100]] == [job.id for job in first]
    assert [(job.tenant_id, job.message_id) for job in again[:100]] == [
        (job.tenant_id, job.message_id) for job in first
    ]
    assert [job.payload for job in again] == [{"v": 1}] * 100 + [{"v": 2}]
    assert again[100].id not in {job.id for job in first}
