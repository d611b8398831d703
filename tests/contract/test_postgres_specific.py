"""What only PostgreSQL has to prove: plans, row locks across processes, commit order.

Each test opens its own :class:`PostgresStore` instances on the session's migrated
database (emptied first), because the point is several connections at once.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import psycopg
import pytest

from conveyor.domain.errors import Conflict, NotFound, StoreUnavailable
from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job, NewJob, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from conveyor.store.postgres.store import PostgresStore
from conveyor.store.queries import load_queries
from tests.conftest import _truncate

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

TENANT = "default"


@pytest.fixture
def pg(pg_migrated: str) -> str:
    """The migrated database, emptied."""
    _truncate(pg_migrated)
    return pg_migrated


@pytest.fixture
async def stores(pg: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores with pools of their own, like two worker processes."""
    first, second = PostgresStore(pg, pool_size=8), PostgresStore(pg, pool_size=8)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def _completed(job_id: int, attempt: int) -> Finish:
    return Finish(job_id, attempt, JobState.COMPLETED, EventType.JOB_SUCCEEDED)


# -- the claim's plan ---------------------------------------------------------------------


def _picked_subquery(sql: str) -> str:
    """The ``picked AS (...)`` part of a claim statement."""
    start = sql.index("(", sql.index("picked AS")) + 1
    depth, end = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(sql[end], 0)
        end += 1
    return sql[start : end - 1]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _assert_walks_claimable_index(plan: dict[str, Any]) -> None:
    scans = [n for n in _nodes(plan) if n.get("Relation Name") == "jobs"]
    assert scans, plan
    for node in scans:
        assert node["Node Type"] in ("Index Scan", "Index Only Scan"), node
        assert node["Index Name"] == "jobs_claimable", node


@pytest.fixture(scope="module")
def stale_statistics(pg_migrated: str) -> Iterator[psycopg.Connection[Any]]:
    """200,000 jobs analysed while available, then 190,000 completed without re-analysing."""
    _truncate(pg_migrated)
    with psycopg.connect(pg_migrated, autocommit=True) as conn:
        conn.execute("ALTER TABLE jobs SET (autovacuum_enabled = false)")
        try:
            conn.execute(
                """
                INSERT INTO jobs (tenant_id, task, queue, state, priority, run_at, payload,
                                  max_attempts, content_type, content_encoding,
                                  created_at, updated_at)
                SELECT 'default', 'bulk.task', 'bulk', 'available', g % 3,
                       now() + g * interval '1 ms', '{}', 3, 'application/json', 'utf-8',
                       now(), now()
                FROM generate_series(1, 200000) AS g
                """
            )
            conn.execute("ANALYZE jobs")
            conn.execute(
                """
                UPDATE jobs SET state = 'completed', attempt = 1
                WHERE id IN (SELECT id FROM jobs ORDER BY priority, run_at, id LIMIT 190000)
                """
            )
            yield conn
        finally:
            conn.execute("ALTER TABLE jobs RESET (autovacuum_enabled)")
    _truncate(pg_migrated)


def test_the_claim_walks_the_claimable_index_with_stale_statistics(
    stale_statistics: psycopg.Connection[Any],
) -> None:
    conn = stale_statistics
    picked = _picked_subquery(load_queries("postgres")["claim_jobs"])
    params = {"tenant_id": TENANT, "queue": "bulk", "limit": 10, "gated": True}
    (plan,) = conn.execute("EXPLAIN (FORMAT JSON) " + picked, params).fetchone()  # type: ignore[misc]
    _assert_walks_claimable_index(plan[0]["Plan"])


def test_the_generic_plan_of_the_claim_walks_the_claimable_index_too(
    stale_statistics: psycopg.Connection[Any],
) -> None:
    # After five executions a prepared statement may switch to a generic plan,
    # planned without the parameter values.
    conn = stale_statistics
    picked = _picked_subquery(load_queries("postgres")["claim_jobs"])
    position = {"tenant_id": 1, "queue": 2, "limit": 3, "gated": 4}
    positional = re.sub(
        r"%\((tenant_id|queue|limit|gated)\)s", lambda m: f"${position[m[1]]}", picked
    )
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute(f"PREPARE picked (text, text, bigint, boolean) AS {positional}")
    try:
        (plan,) = conn.execute(
            "EXPLAIN (FORMAT JSON) EXECUTE picked ('default', 'bulk', 10, true)"
        ).fetchone()  # type: ignore[misc]
    finally:
        conn.execute("DEALLOCATE picked")
        conn.execute("RESET plan_cache_mode")
    _assert_walks_claimable_index(plan[0]["Plan"])


def _generic_plan(conn: psycopg.Connection[Any], name: str) -> dict[str, Any]:
    """The generic plan of a whole claim statement, as the claims' connections use it."""
    sql = load_queries("postgres")[name]
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    statement = re.sub(r"%\((\w+)\)s", positional, sql)
    types = {"limit": "bigint", "gated": "boolean", "now": "timestamptz"}
    types["lease_expires_at"] = "timestamptz"
    signature = ", ".join(types.get(n, "text") for n in names)
    values = {"limit": "10", "gated": "true", "now": "now()", "lease_expires_at": "now()"}
    arguments = ", ".join(values.get(n, "'default'") for n in names)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute(f"PREPARE whole ({signature}) AS {statement}")
    try:
        (plan,) = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE whole ({arguments})").fetchone()  # type: ignore[misc]
    finally:
        conn.execute("DEALLOCATE whole")
        conn.execute("RESET plan_cache_mode")
    return plan[0]["Plan"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["claim_jobs", "claim_urgent_jobs"])
def test_the_generic_plan_of_a_whole_claim_updates_by_primary_key(
    pg_migrated: str, name: str
) -> None:
    # Guessing a tenth of 30,000 waiting jobs picked, a generic plan once hash-joined
    # a scan of the whole table to update them. The table is filled and analysed in a
    # transaction that is rolled back.
    with (
        psycopg.connect(pg_migrated, autocommit=True) as conn,
        conn.transaction(force_rollback=True),
    ):
        conn.execute("TRUNCATE jobs CASCADE")
        conn.execute(
            """
            INSERT INTO jobs (tenant_id, task, queue, state, priority, run_at, payload,
                              max_attempts, content_type, content_encoding,
                              created_at, updated_at)
            SELECT 'default', 'bulk.task', 'default', 'available', g % 3, now(), '{}', 3,
                   'application/json', 'utf-8', now(), now()
            FROM generate_series(1, 30000) AS g
            """
        )
        conn.execute("ANALYZE jobs")
        plan = _generic_plan(conn, name)
    scans = [
        n
        for n in _nodes(plan)
        if n.get("Relation Name") == "jobs" and n["Node Type"] != "ModifyTable"
    ]
    assert {n["Node Type"] for n in scans} <= {"Index Scan", "Index Only Scan"}, scans
    assert "jobs_pkey" in {n.get("Index Name") for n in scans}


async def test_claims_keep_their_generic_plan(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store = stores[0]
    for _ in range(10):  # a statement is prepared at its fifth run, then planned once
        await store.enqueue([new_job("t", now=store.clock())])
        (job,) = await store.claim(TENANT, "default", "w", 1, 30)
        await store.finish([_completed(job.id, job.attempt)])
    async with store._connection(store._claims_pool()) as conn:
        cursor = await conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE '%claimed AS%'"
        )
        plans = await cursor.fetchall()
    assert plans and sum(p["generic_plans"] for p in plans) >= 1
    assert sum(p["custom_plans"] for p in plans) == 0


def test_attempt_rows_have_no_foreign_key_to_their_job(pg_migrated: str) -> None:
    with psycopg.connect(pg_migrated) as conn:
        found = conn.execute(
            "SELECT conname FROM pg_constraint"
            " WHERE conrelid = 'job_attempts'::regclass AND contype = 'f'"
        ).fetchall()
    assert found == []


# -- concurrent claims --------------------------------------------------------------------


async def test_two_stores_claiming_at_once_never_get_the_same_job(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = stores
    await first.enqueue([new_job("race.task", {"n": n}) for n in range(500)])
    claimed: list[int] = []

    async def claimer(store: PostgresStore, worker: str) -> None:
        while batch := await store.claim(TENANT, "default", worker, 7, 60):
            claimed.extend(job.id for job in batch)

    await asyncio.gather(*(claimer(store, f"w-{i}") for i in range(4) for store in (first, second)))
    assert len(claimed) == 500
    assert len(set(claimed)) == 500


async def test_a_concurrency_limit_holds_across_many_concurrent_claimers(
    pg: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    first, second = stores
    await first.limit_queue(TENANT, "default", 3)
    await first.enqueue([new_job("limited.task") for _ in range(60)])
    most_running = 0
    done: list[int] = []

    async def watch(stop: asyncio.Event) -> None:
        nonlocal most_running
        async with await psycopg.AsyncConnection.connect(pg, autocommit=True) as conn:
            while not stop.is_set():
                cursor = await conn.execute("SELECT count(*) FROM jobs WHERE state = 'running'")
                (running,) = await cursor.fetchone()  # type: ignore[misc]
                most_running = max(most_running, running)
                await asyncio.sleep(0)

    async def claimer(store: PostgresStore, worker: str) -> None:
        idle = 0
        while len(done) < 60 and idle < 200:
            batch = await store.claim(TENANT, "default", worker, 2, 60)
            if not batch:
                idle += 1
                await asyncio.sleep(0.005)
                continue
            await asyncio.sleep(0.01)
            assert all(await store.finish([_completed(j.id, j.attempt) for j in batch]))
            done.extend(j.id for j in batch)

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(stop))
    await asyncio.gather(*(claimer(s, f"w-{i}") for i in range(6) for s in (first, second)))
    stop.set()
    await watcher
    assert sorted(done) == sorted(set(done))
    assert len(done) == 60
    assert 0 < most_running <= 3


# -- the event cursor ---------------------------------------------------------------------

_INSERT_EVENT = (
    "INSERT INTO events (tenant_id, job_id, type, data, created_at) "
    "VALUES ('default', NULL, %s, '{}', now()) RETURNING id"
)


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _insert_event(conn: psycopg.AsyncConnection[Any], label: str) -> int:
    cursor = await conn.execute(_INSERT_EVENT, (label,))
    (event_id,) = await cursor.fetchone()  # type: ignore[misc]
    return int(event_id)


class Reader:
    """A consumer that keeps a cursor, as the notifier or an SSE stream would."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.cursor = 0
        self.seen: list[int] = []

    async def read(self) -> list[str]:
        events = await self.store.list_events(TENANT, self.cursor, 1000)
        if events:
            self.cursor = events[-1].id
        self.seen.extend(e.id for e in events)
        return [e.type for e in events]


async def test_an_event_that_took_its_id_early_but_committed_late_is_not_skipped(
    pg: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    reader = Reader(stores[0])
    early, late = await _connect(pg), await _connect(pg)
    try:
        async with early.transaction():
            early_id = await _insert_event(early, "early")
            async with late.transaction():
                late_id = await _insert_event(late, "late")
            assert late_id > early_id
            assert await reader.read() == []  # "late" waits until "early" commits
        assert await reader.read() == ["early", "late"]
    finally:
        await early.close()
        await late.close()


async def test_the_event_horizon_stays_behind_a_transaction_still_open(
    pg: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    store = stores[0]
    early, late = await _connect(pg), await _connect(pg)
    try:
        async with early.transaction():
            await _insert_event(early, "early")
            async with late.transaction():
                late_id = await _insert_event(late, "late")
            horizon = await store.event_horizon()  # "late" committed, "early" still open
            assert await store.event_horizon(late_id) == late_id  # a cursor never steps back
        events = await store.list_events(None, horizon)
        assert [e.type for e in events] == ["early", "late"]
    finally:
        await early.close()
        await late.close()


async def test_an_event_of_an_older_transaction_that_took_a_later_id_is_not_skipped(
    pg: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    # The older transaction (smaller xid) takes the larger event id and commits
    # first: a reader walking ids past it would never see the other one.
    reader = Reader(stores[0])
    older, younger = await _connect(pg), await _connect(pg)
    try:
        async with older.transaction():
            await older.execute("SELECT pg_current_xact_id()")  # takes its xid now
            async with younger.transaction():
                await younger.execute("SELECT pg_current_xact_id()")
                younger_id = await _insert_event(younger, "younger")
                older_id = await _insert_event(older, "older")
            # "younger" has committed, "older" (the smaller xid) is still open
            assert older_id > younger_id
            assert await reader.read() == []
        assert sorted(await reader.read()) == ["older", "younger"]
        # In read order "older" (the smaller xid) comes first: a cursor at "younger",
        # though its id is smaller, is already past it and stays where it is.
        store = stores[0]
        assert await store.event_horizon(younger_id) == younger_id
        assert await store.event_horizon(older_id) == younger_id
    finally:
        await older.close()
        await younger.close()


async def test_a_reader_among_many_concurrent_writers_sees_every_event_once(
    pg: str, stores: tuple[PostgresStore, PostgresStore]
) -> None:
    first, second = stores
    reader = Reader(PostgresStore(pg, pool_size=2))
    await reader.store.open()
    writing = True

    async def enqueuer(store: PostgresStore, n: int) -> None:
        for i in range(15):
            await store.enqueue([new_job("busy.task", {"w": n, "i": i}) for _ in range(5)])

    async def slow_writer() -> None:
        conn = await _connect(pg)
        try:
            for _ in range(10):
                async with conn.transaction():
                    await _insert_event(conn, "slow")
                    await asyncio.sleep(0.02)
        finally:
            await conn.close()

    async def read_all_the_time() -> None:
        while writing:
            await reader.read()
            await asyncio.sleep(0)

    try:
        reading = asyncio.create_task(read_all_the_time())
        await asyncio.gather(
            *(enqueuer(s, n) for n in range(3) for s in (first, second)), slow_writer()
        )
        writing = False
        await reading
        while await reader.read():
            pass
    finally:
        await reader.store.close()
    async with await _connect(pg) as conn:
        cursor = await conn.execute("SELECT id FROM events ORDER BY id")
        everything = [row[0] for row in await cursor.fetchall()]
    assert len(everything) == 6 * 15 * 5 + 10
    assert sorted(reader.seen) == everything  # each one, exactly once


# -- wake-ups and migrations ----------------------------------------------------------------


async def test_an_enqueue_in_one_store_wakes_a_worker_waiting_on_another(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    waiting, writing = stores
    await waiting.wait_for_work(0.05)  # starts listening
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiter = asyncio.create_task(waiting.wait_for_work(10))
    await asyncio.sleep(0.05)
    await writing.enqueue([new_job("wake.task")])
    await asyncio.wait_for(waiter, 5)
    assert loop.time() - started < 5


async def test_wait_for_work_returns_after_max_wait_when_nothing_happens(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store = stores[0]
    await store.wait_for_work(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await store.wait_for_work(0.3)
    assert 0.25 <= loop.time() - started < 3


async def test_two_processes_migrating_an_empty_database_at_once_apply_each_migration_once(
    pg: str,
) -> None:
    name = f"conveyor_race_{uuid.uuid4().hex[:10]}"
    admin = pg.rpartition("/")[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg.rpartition("/")[0] + f"/{name}"
    racers = [PostgresStore(url, pool_size=2) for _ in range(3)]
    try:
        for store in racers:
            await store.open()
        results = await asyncio.gather(*(store.migrate() for store in racers))
        applied = sorted(v for result in results for v in result)
        assert applied == sorted({v for result in results for v in result})
        assert await racers[0].schema_version() == max(applied)
        await racers[1].check_schema()
    finally:
        for store in racers:
            await store.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_an_unreachable_database_is_store_unavailable() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=1")
    with pytest.raises(StoreUnavailable, match="PostgreSQL is unavailable"):
        await store.open()


async def test_a_limit_set_by_another_process_holds_at_once(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = stores
    await first.enqueue([new_job("limited.task") for _ in range(20)])
    assert len(await first.claim(TENANT, "default", "w1", 2, 30)) == 2  # knows: no limit
    await second.limit_queue(TENANT, "default", 3)
    # first still believes the queue unlimited, but its one-statement claim checks the
    # queue row itself and takes nothing rather than pass the limit.
    assert await first.claim(TENANT, "default", "w1", 10, 30) == []
    await asyncio.sleep(1.05)  # first re-reads the queue's settings
    assert len(await first.claim(TENANT, "default", "w1", 10, 30)) == 1


# -- concurrent batches ---------------------------------------------------------------


def _count_deadlocks(store: PostgresStore, seen: list[str]) -> None:
    """Record in ``seen`` each statement of ``store`` that PostgreSQL failed to end a
    deadlock."""
    run = store._all

    async def counted(conn: Any, name: str, params: dict[str, Any]) -> Any:
        try:
            return await run(conn, name, params)
        except psycopg.errors.DeadlockDetected:
            seen.append(name)
            raise

    store._all = counted  # type: ignore[method-assign]


async def test_batches_with_the_same_message_ids_in_opposite_orders_all_pass(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    # Written at once (by two stores, as by two processes, and by one store's two
    # writers), each batch waits for the message ids another holds: PostgreSQL fails
    # one to end the deadlock, and that one is sent again. Rounds go on until one
    # deadlocked: about one round in five does here, so 40 rounds miss it about once
    # in 3,000 runs.
    first, second = stores
    deadlocks: list[str] = []
    for store in stores:
        _count_deadlocks(store, deadlocks)
    for round_ in range(40):
        ids = [f"r{round_}-m{n}" for n in range(150)]

        def batch(order: list[str]) -> list[NewJob]:
            return [new_job("t", message_id=m, now=first.clock()) for m in order]

        calls = [asyncio.ensure_future(first.enqueue(batch(ids)))]
        for _ in range(3):
            await asyncio.sleep(0)  # the first writer takes that batch alone
        calls.append(asyncio.ensure_future(first.enqueue(batch(ids[::-1]))))
        calls.append(asyncio.ensure_future(second.enqueue(batch(ids[::-1]))))
        results = await asyncio.gather(*calls)
        by_message = [{job.message_id: job.id for job in result} for result in results]
        assert all(jobs == by_message[0] for jobs in by_message)
        assert len(set(by_message[0].values())) == 150
        if deadlocks:
            break
    assert deadlocks and set(deadlocks) == {"insert_job"}


async def test_a_batch_that_keeps_deadlocking_fails_after_three_tries(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store = stores[0]
    sent: list[str] = []

    async def always_deadlocked(conn: Any, name: str, params: dict[str, Any]) -> Any:
        sent.append(name)
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    store._all = always_deadlocked  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        await store.enqueue([new_job("t", now=store.clock())])
    assert sent == ["insert_job"] * 3


async def test_a_batch_refused_for_another_reason_is_not_sent_again(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store = stores[0]
    sent: list[str] = []
    run = store._all

    async def counted(conn: Any, name: str, params: dict[str, Any]) -> Any:
        sent.append(name)
        return await run(conn, name, params)

    store._all = counted  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        await store.enqueue([new_job("t", tenant_id="no-such-tenant", now=store.clock())])
    assert sent == ["insert_job"]


async def _enqueue_merged(
    store: PostgresStore, *calls: list[NewJob]
) -> list[asyncio.Future[list[Job]]]:
    """Enqueue a lone job whose insert is held a moment, and ``calls`` meanwhile, so
    that they share the next group; the calls, once the lone job is stored."""
    run = store._all
    held = asyncio.Event()

    async def hold_first_insert(conn: Any, name: str, params: dict[str, Any]) -> Any:
        if name == "insert_job" and not held.is_set():
            held.set()
            await asyncio.sleep(0.05)
        return await run(conn, name, params)

    store._all = hold_first_insert  # type: ignore[method-assign]
    lone = asyncio.ensure_future(store.enqueue([new_job("t", key="lone", now=store.clock())]))
    await held.wait()
    merged = [asyncio.ensure_future(store.enqueue(jobs)) for jobs in calls]
    await lone
    return merged


def _replace_known_lookup(
    store: PostgresStore, lookup: Callable[[], Coroutine[Any, Any, list[Any]]]
) -> None:
    """Make the store's read of known message ids' first jobs run ``lookup`` instead."""
    read_rows = store._all

    async def rows_or_lookup(conn: Any, name: str, params: dict[str, Any]) -> list[Any]:
        if name == "jobs_by_message_ids":
            return await lookup()
        return await read_rows(conn, name, params)

    store._all = rows_or_lookup  # type: ignore[method-assign]


async def test_a_group_failing_after_its_insert_committed_is_not_inserted_again(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    # The insert commits on its own; the lookup of a known message id that follows it
    # fails. Writing each caller again would store the jobs without message id twice.
    store = stores[0]
    await store.enqueue([new_job("t", message_id="m1", now=store.clock())])

    async def lookup_lost() -> list[Any]:
        raise psycopg.OperationalError("connection lost")

    _replace_known_lookup(store, lookup_lost)
    merged = await _enqueue_merged(
        store,
        [new_job("t", key="fresh", now=store.clock())],
        [new_job("t", message_id="m1", now=store.clock())],
    )
    for call in merged:
        with pytest.raises(StoreUnavailable):
            await call
    async with store.pool.connection() as conn:
        cursor = await conn.execute("SELECT key, count(*) AS n FROM jobs GROUP BY key ORDER BY key")
        counts = {row["key"]: row["n"] for row in await cursor.fetchall()}
    assert counts == {"fresh": 1, "lone": 1, None: 1}


async def test_a_group_whose_known_message_id_vanished_fails_only_its_caller(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    # The first job of a known message id is gone when it is looked up (its tenant's
    # data deleted meanwhile): that caller gets Conflict, the others their jobs.
    store = stores[0]
    await store.enqueue([new_job("t", message_id="m1", now=store.clock())])

    async def vanished() -> list[Any]:
        return []

    _replace_known_lookup(store, vanished)
    fresh, known = await _enqueue_merged(
        store,
        [new_job("t", key="fresh", now=store.clock())],
        [new_job("t", message_id="m1", now=store.clock())],
    )
    (job,) = await fresh
    assert job.key == "fresh"
    with pytest.raises(Conflict, match="m1"):
        await known
