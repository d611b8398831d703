"""The Store contract: every case runs on SQLite and on PostgreSQL (the ``store`` fixture).

Time is the ``clock`` fixture's: it stands still until a test advances it, so
leases, backoffs and due times are exact.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from conveyor.domain.errors import IllegalTransition, InvalidInput, NotFound, SchemaOutdated
from conveyor.domain.jobs import ErrorInfo, Job, JobFilter, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Completed, Discarded, Failed, Finish, Outcome, decide
from conveyor.domain.retry import Backoff
from conveyor.store import store_from_url
from conveyor.store.protocol import Store, WorkerInfo
from conveyor.store.queries import migration_files
from tests.contract.conftest import TENANT, Enqueue, FakeClock

pytestmark = pytest.mark.anyio

S = JobState
BOOM = ErrorInfo("RuntimeError", "boom", "Traceback (most recent call last): ...")
STEADY = Backoff(base=10, factor=2, cap=3600, jitter=0)  # 10 s, 20 s, 40 s ...
LEASE = 30.0


async def claim(
    store: Store,
    limit: int = 10,
    *,
    queue: str = "default",
    worker: str = "worker-1",
    lease: float = LEASE,
    urgent_only: bool = False,
) -> list[Job]:
    return await store.claim(TENANT, queue, worker, limit, lease, urgent_only=urgent_only)


async def claim_one(store: Store, **kwargs: object) -> Job:
    (job,) = await claim(store, 1, **kwargs)  # type: ignore[arg-type]
    return job


def finish_for(job: Job, outcome: Outcome, now: datetime) -> Finish:
    return decide(
        outcome,
        job_id=job.id,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        backoff=STEADY,
        now=now,
    )


async def finish(store: Store, job: Job, outcome: Outcome, now: datetime) -> bool:
    (accepted,) = await store.finish([finish_for(job, outcome, now)])
    return accepted


async def event_types(store: Store, job_id: int | None = None) -> list[str]:
    events = await store.list_events(TENANT, 0, 10_000)
    return [e.type for e in events if job_id is None or e.job_id == job_id]


async def state_of(store: Store, job: Job) -> JobState:
    return (await store.get_job(TENANT, job.id)).state


async def all_jobs(store: Store) -> list[Job]:
    return await store.list_jobs(TENANT, JobFilter(limit=1000, newest_first=False))


# -- enqueue ------------------------------------------------------------------


async def test_enqueue_stores_every_field_of_the_job(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue(
        "crm.contact.update",
        {"id": 7, "fields": {"name": "Ana"}},
        queue="crm",
        priority=2,
        max_attempts=4,
        timeout=12.5,
        message_id="msg-1",
        content_type="application/vnd.crm+json",
        content_encoding="gzip",
        key="contact:7",
        tags=["crm", "update"],
        assignee="tech-1",
        immediate=True,
    )
    stored = await store.get_job(TENANT, job.id)
    assert stored == job
    assert stored.tenant_id == TENANT
    assert (stored.task, stored.queue, stored.state) == ("crm.contact.update", "crm", S.AVAILABLE)
    assert stored.payload == {"id": 7, "fields": {"name": "Ana"}}
    assert (stored.priority, stored.max_attempts, stored.timeout) == (2, 4, 12.5)
    assert stored.message_id == "msg-1"
    assert (stored.content_type, stored.content_encoding) == ("application/vnd.crm+json", "gzip")
    assert (stored.key, stored.tags, stored.assignee) == ("contact:7", ("crm", "update"), "tech-1")
    assert stored.immediate is True
    assert stored.attempt == 0
    assert stored.run_at == stored.created_at == stored.updated_at == clock.now
    assert stored.started_at is None
    assert stored.finished_at is None
    assert stored.lease_expires_at is None
    assert stored.worker_id is None
    assert stored.result is None
    assert stored.error is None
    assert stored.progress is None


async def test_enqueue_keeps_a_job_due_later_scheduled(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    later = await enqueue(delay=60)
    now = await enqueue()
    assert later.state is S.SCHEDULED
    assert later.run_at == clock.now + timedelta(seconds=60)
    assert now.state is S.AVAILABLE
    events = await store.list_events(TENANT)
    assert [(e.job_id, e.type, e.data.get("state")) for e in events] == [
        (later.id, "job.enqueued", "scheduled"),
        (now.id, "job.enqueued", "available"),
    ]


async def test_enqueue_of_a_batch_inserts_every_job_in_order_with_one_event_each(
    store: Store, clock: FakeClock
) -> None:
    batch = [new_job("report.build", {"n": n}, now=clock()) for n in range(50)]
    created = await store.enqueue(batch)
    assert [job.payload for job in created] == [{"n": n} for n in range(50)]
    ids = [job.id for job in created]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50
    assert [job.id for job in await all_jobs(store)] == ids
    events = await store.list_events(TENANT, 0, 1000)
    assert [(e.type, e.job_id) for e in events] == [("job.enqueued", i) for i in ids]


async def test_a_batch_with_a_known_message_id_writes_events_for_its_new_jobs_only(
    store: Store, clock: FakeClock
) -> None:
    [known] = await store.enqueue([new_job("report.build", message_id="a", now=clock())])
    later = clock() + timedelta(hours=1)
    batch = [
        new_job("mail.send", queue="mail", message_id="b", now=clock()),
        new_job("report.build", message_id="a", now=clock()),
        new_job("report.build", run_at=later, now=clock()),
    ]
    first, again, scheduled = await store.enqueue(batch)
    assert again.id == known.id
    events = await store.list_events(TENANT, 0, 1000)
    assert [(e.job_id, e.type, e.tenant_id, e.data) for e in events[1:]] == [
        (
            first.id,
            "job.enqueued",
            TENANT,
            {"task": "mail.send", "queue": "mail", "state": "available"},
        ),
        (
            scheduled.id,
            "job.enqueued",
            TENANT,
            {"task": "report.build", "queue": "default", "state": "scheduled"},
        ),
    ]


async def test_enqueue_of_a_batch_that_fails_in_the_store_writes_nothing(
    store: Store, clock: FakeClock
) -> None:
    # The second job names a tenant the database does not hold: the insert fails
    # after the first row was written, and the whole batch must roll back.
    batch = [
        new_job("report.build", now=clock()),
        new_job("report.build", tenant_id="no-such-tenant", now=clock()),
    ]
    with pytest.raises(Exception):  # noqa: B017, PT011 - the point is what is left behind
        await store.enqueue(batch)
    assert await all_jobs(store) == []
    assert await store.list_events(None) == []


async def test_enqueue_for_a_tenant_that_does_not_exist_is_not_found(
    store: Store, clock: FakeClock
) -> None:
    # Driver errors are mapped to Conveyor's in one place, the same on both stores.
    with pytest.raises(NotFound):
        await store.enqueue([new_job("report.build", tenant_id="no-such-tenant", now=clock())])


async def test_enqueue_of_nothing_returns_nothing(store: Store) -> None:
    assert await store.enqueue([]) == []


async def test_a_second_enqueue_with_the_same_message_id_returns_the_first_job(
    store: Store, enqueue: Enqueue
) -> None:
    first = await enqueue("crm.contact.update", {"v": 1}, message_id="msg-1")
    again = await enqueue("crm.contact.update", {"v": 2}, message_id="msg-1", priority=0)
    assert again.id == first.id
    assert again.payload == {"v": 1}
    assert again.priority == first.priority
    assert len(await all_jobs(store)) == 1
    assert await event_types(store) == ["job.enqueued"]


async def test_a_batch_repeating_a_message_id_creates_the_job_once(
    store: Store, clock: FakeClock
) -> None:
    batch = [
        new_job("crm.contact.update", {"v": 1}, message_id="msg-1", now=clock()),
        new_job("crm.contact.update", {"v": 2}, message_id="msg-2", now=clock()),
        new_job("crm.contact.update", {"v": 3}, message_id="msg-1", now=clock()),
    ]
    first, second, third = await store.enqueue(batch)
    assert third.id == first.id
    assert third.payload == {"v": 1}
    assert second.id != first.id
    assert len(await all_jobs(store)) == 2
    assert await event_types(store) == ["job.enqueued", "job.enqueued"]


async def test_a_message_id_still_deduplicates_after_its_job_finished(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    first = await enqueue(message_id="msg-1")
    assert await finish(store, await claim_one(store), Completed("done"), clock())
    again = await enqueue(message_id="msg-1")
    assert again.id == first.id
    assert again.state is S.COMPLETED
    assert len(await all_jobs(store)) == 1


async def test_jobs_without_a_message_id_are_never_merged(store: Store, enqueue: Enqueue) -> None:
    a = await enqueue(payload={"same": True})
    b = await enqueue(payload={"same": True})
    assert a.id != b.id


async def test_get_job_of_an_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_job(TENANT, 999_999)


# -- claim ----------------------------------------------------------------------


async def test_claim_takes_lowest_priority_number_first_then_earliest_run_at_then_id(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    now = clock()
    low = await enqueue(payload="low", priority=5, run_at=now - timedelta(seconds=100))
    late = await enqueue(payload="late", priority=1, run_at=now - timedelta(seconds=5))
    early_1 = await enqueue(payload="early-1", priority=1, run_at=now - timedelta(seconds=20))
    early_2 = await enqueue(payload="early-2", priority=1, run_at=now - timedelta(seconds=20))
    top = await enqueue(payload="top", priority=0)
    claimed = await claim(store, 10)
    assert [job.id for job in claimed] == [top.id, early_1.id, early_2.id, late.id, low.id]


async def test_claim_one_at_a_time_follows_the_same_order(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    now = clock()
    low = await enqueue(priority=9)
    late = await enqueue(priority=3, run_at=now - timedelta(seconds=1))
    early = await enqueue(priority=3, run_at=now - timedelta(seconds=50))
    top = await enqueue(priority=0, run_at=now)
    order = [(await claim_one(store)).id for _ in range(4)]
    assert order == [top.id, early.id, late.id, low.id]
    assert await claim(store) == []


async def test_claim_moves_the_job_to_running_under_a_lease_for_the_worker(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue()
    clock.advance(3)
    claimed = await claim_one(store, worker="worker-7", lease=45)
    assert claimed.id == job.id
    assert claimed.state is S.RUNNING
    assert claimed.attempt == 1
    assert claimed.worker_id == "worker-7"
    assert claimed.started_at == clock.now
    assert claimed.lease_expires_at == clock.now + timedelta(seconds=45)
    assert await store.get_job(TENANT, job.id) == claimed


async def test_claim_takes_at_most_limit_jobs(store: Store, enqueue: Enqueue) -> None:
    for _ in range(5):
        await enqueue()
    assert len(await claim(store, 2)) == 2
    counts = await store.count_jobs(TENANT)
    assert counts == {("default", S.RUNNING): 2, ("default", S.AVAILABLE): 3}
    assert len(await claim(store, 10)) == 3
    assert await claim(store, 10) == []


async def test_claim_takes_only_from_its_queue(store: Store, enqueue: Enqueue) -> None:
    mail = await enqueue(queue="mail")
    await enqueue(queue="reports")
    claimed = await claim(store, 10, queue="mail")
    assert [job.id for job in claimed] == [mail.id]
    assert await claim(store, 10, queue="mail") == []


async def test_claim_never_takes_a_job_that_is_not_available(
    store: Store, enqueue: Enqueue
) -> None:
    await enqueue(delay=60)
    running = await enqueue()
    await claim_one(store)
    assert await claim(store, 10) == []
    assert await state_of(store, running) is S.RUNNING


async def test_urgent_claim_takes_only_priority_zero_or_immediate_jobs(
    store: Store, enqueue: Enqueue
) -> None:
    await enqueue(priority=1)
    await enqueue(priority=5)
    urgent = await enqueue(priority=0)
    immediate = await enqueue(priority=7, immediate=True)
    claimed = await claim(store, 10, urgent_only=True)
    assert [job.id for job in claimed] == [urgent.id, immediate.id]
    assert await claim(store, 10, urgent_only=True) == []
    assert len(await claim(store, 10)) == 2


async def test_a_paused_queue_gives_out_nothing_until_it_is_resumed(
    store: Store, enqueue: Enqueue
) -> None:
    job = await enqueue(queue="mail")
    info = await store.pause_queue(TENANT, "mail", True)
    assert info.name == "mail"
    assert info.paused is True
    assert await claim(store, 10, queue="mail") == []
    assert await claim(store, 10, queue="mail", urgent_only=True) == []
    info = await store.pause_queue(TENANT, "mail", False)
    assert info.paused is False
    assert [j.id for j in await claim(store, 10, queue="mail")] == [job.id]
    events = await store.list_events(TENANT)
    queue_events = [(e.type, e.data.get("queue")) for e in events if e.job_id is None]
    assert queue_events == [("queue.paused", "mail"), ("queue.resumed", "mail")]


async def test_pausing_one_queue_leaves_the_others_running(store: Store, enqueue: Enqueue) -> None:
    await enqueue(queue="mail")
    await enqueue(queue="reports")
    await store.pause_queue(TENANT, "mail", True)
    assert len(await claim(store, 10, queue="reports")) == 1


async def test_a_concurrency_limit_caps_running_jobs_across_claims(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    for _ in range(5):
        await enqueue(queue="cnpj")
    info = await store.limit_queue(TENANT, "cnpj", 2)
    assert info.concurrency == 2
    first = await claim(store, 10, queue="cnpj", worker="a")
    assert len(first) == 2
    assert await claim(store, 10, queue="cnpj", worker="b") == []
    assert await finish(store, first[0], Completed(), clock())
    assert len(await claim(store, 10, queue="cnpj", worker="b")) == 1
    assert await claim(store, 10, queue="cnpj", worker="b") == []


async def test_a_concurrency_limit_of_zero_stops_claims_and_none_lifts_the_cap(
    store: Store, enqueue: Enqueue
) -> None:
    for _ in range(3):
        await enqueue(queue="cnpj")
    await store.limit_queue(TENANT, "cnpj", 0)
    assert await claim(store, 10, queue="cnpj") == []
    info = await store.limit_queue(TENANT, "cnpj", None)
    assert info.concurrency is None
    assert len(await claim(store, 10, queue="cnpj")) == 3


async def test_a_negative_concurrency_limit_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.limit_queue(TENANT, "cnpj", -1)
    assert caught.value.field == "concurrency"


# -- heartbeat --------------------------------------------------------------------


async def test_heartbeat_extends_the_leases_of_held_jobs(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    a = await enqueue()
    b = await enqueue()
    held = await claim(store, 10, worker="w")
    clock.advance(20)
    alive = await store.heartbeat("w", [(j.id, j.attempt) for j in held], 60)
    assert alive == {a.id, b.id}
    for job in (a, b):
        stored = await store.get_job(TENANT, job.id)
        assert stored.lease_expires_at == clock.now + timedelta(seconds=60)


async def test_heartbeat_refuses_a_stale_attempt_and_leaves_the_lease_alone(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    first = await claim_one(store, worker="w")
    clock.advance(LEASE + 1)
    assert await store.rescue_expired() == [first.id]
    second = await claim_one(store, worker="w")
    assert second.attempt == 2
    clock.advance(5)
    assert await store.heartbeat("w", [(first.id, 1)], 600) == set()
    stored = await store.get_job(TENANT, first.id)
    assert stored.lease_expires_at == second.lease_expires_at


async def test_heartbeat_from_another_worker_is_refused(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store, worker="owner")
    clock.advance(10)
    assert await store.heartbeat("intruder", [(job.id, job.attempt)], 600) == set()
    assert (await store.get_job(TENANT, job.id)).lease_expires_at == job.lease_expires_at


async def test_heartbeat_of_a_finished_job_is_refused(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store, worker="w")
    assert await finish(store, job, Completed(), clock())
    assert await store.heartbeat("w", [(job.id, job.attempt)], 60) == set()
    assert (await store.get_job(TENANT, job.id)).lease_expires_at is None


async def test_heartbeat_of_nothing_holds_nothing(store: Store) -> None:
    assert await store.heartbeat("w", [], 60) == set()


# -- finish ------------------------------------------------------------------------


async def test_finishing_completed_stores_the_result_and_the_attempt(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    started = clock.now
    job = await claim_one(store, worker="w")
    clock.advance(4)
    assert await finish(store, job, Completed({"rows": 3}), clock())
    done = await store.get_job(TENANT, job.id)
    assert done.state is S.COMPLETED
    assert done.result == {"rows": 3}
    assert done.error is None
    assert done.finished_at == clock.now
    assert done.lease_expires_at is None
    assert done.progress == 1.0
    (attempt,) = await store.list_attempts(TENANT, job.id)
    assert (attempt.job_id, attempt.attempt, attempt.worker_id) == (job.id, 1, "w")
    assert (attempt.started_at, attempt.finished_at) == (started, clock.now)
    assert attempt.outcome == "completed"
    assert attempt.error is None


async def test_finishing_failed_with_attempts_left_waits_for_the_backoff(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=3)
    job = await claim_one(store)
    assert await finish(store, job, Failed(BOOM), clock())
    waiting = await store.get_job(TENANT, job.id)
    assert waiting.state is S.RETRYABLE
    assert waiting.run_at == clock.now + timedelta(seconds=10)
    assert waiting.error == BOOM
    assert waiting.finished_at is None
    assert waiting.lease_expires_at is None
    (attempt,) = await store.list_attempts(TENANT, job.id)
    assert attempt.outcome == "failed"
    assert attempt.error == BOOM
    events = [e for e in await store.list_events(TENANT) if e.type == "job.retrying"]
    assert len(events) == 1
    assert events[0].data["error"] == {"type": "RuntimeError", "message": "boom"}


async def test_finishing_failed_on_the_last_attempt_discards_the_job(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=1)
    job = await claim_one(store)
    assert await finish(store, job, Failed(BOOM), clock())
    dead = await store.get_job(TENANT, job.id)
    assert dead.state is S.DISCARDED
    assert dead.error == BOOM
    assert dead.finished_at == clock.now
    assert [a.outcome for a in await store.list_attempts(TENANT, job.id)] == ["discarded"]


async def test_finishing_discarded_ends_the_job_even_with_attempts_left(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=5)
    job = await claim_one(store)
    assert await finish(store, job, Discarded(BOOM), clock())
    assert await state_of(store, job) is S.DISCARDED
    assert await event_types(store, job.id) == ["job.enqueued", "job.started", "job.discarded"]


async def test_a_second_finish_of_the_same_attempt_is_refused(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store)
    assert await finish(store, job, Completed("first"), clock())
    clock.advance(1)
    assert not await finish(store, job, Failed(BOOM), clock())
    done = await store.get_job(TENANT, job.id)
    assert done.state is S.COMPLETED
    assert done.result == "first"
    assert len(await store.list_attempts(TENANT, job.id)) == 1
    assert await event_types(store, job.id) == ["job.enqueued", "job.started", "job.succeeded"]


async def test_a_finish_after_the_job_was_rescued_is_refused(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=3)
    job = await claim_one(store)
    clock.advance(LEASE + 1)
    assert await store.rescue_expired() == [job.id]
    assert not await finish(store, job, Completed("too late"), clock())
    stored = await store.get_job(TENANT, job.id)
    assert stored.state is S.AVAILABLE
    assert stored.result is None
    assert [a.outcome for a in await store.list_attempts(TENANT, job.id)] == ["lost"]


async def test_only_the_current_attempt_may_finish_after_a_reclaim(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=3)
    first = await claim_one(store, worker="slow")
    clock.advance(LEASE + 1)
    await store.rescue_expired()
    second = await claim_one(store, worker="fast")
    assert not await finish(store, first, Completed("stale"), clock())
    assert await finish(store, second, Completed("fresh"), clock())
    done = await store.get_job(TENANT, first.id)
    assert (done.state, done.result, done.attempt) == (S.COMPLETED, "fresh", 2)
    attempts = await store.list_attempts(TENANT, first.id)
    assert [(a.attempt, a.worker_id, a.outcome) for a in attempts] == [
        (1, "slow", "lost"),
        (2, "fast", "completed"),
    ]


async def test_a_batch_of_finishes_answers_each_item_in_order(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    for _ in range(3):
        await enqueue()
    a, b, c = await claim(store, 3)
    assert await finish(store, b, Completed(), clock())
    answers = await store.finish(
        [
            finish_for(a, Completed("a"), clock()),
            finish_for(b, Completed("b again"), clock()),
            finish_for(c, Failed(BOOM), clock()),
        ]
    )
    assert answers == [True, False, True]
    assert [await state_of(store, j) for j in (a, b, c)] == [S.COMPLETED, S.COMPLETED, S.RETRYABLE]


async def test_finish_of_nothing_answers_nothing(store: Store) -> None:
    assert await store.finish([]) == []


# -- rescue --------------------------------------------------------------------------


async def test_rescue_returns_an_expired_job_to_available_counting_the_attempt(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=2)
    job = await claim_one(store, worker="dead")
    clock.advance(LEASE + 1)
    assert await store.rescue_expired() == [job.id]
    rescued = await store.get_job(TENANT, job.id)
    assert rescued.state is S.AVAILABLE
    assert rescued.attempt == 1
    assert rescued.lease_expires_at is None
    assert rescued.finished_at is None
    assert rescued.error is not None
    assert rescued.error.type == "LeaseExpired"
    (attempt,) = await store.list_attempts(TENANT, job.id)
    assert (attempt.attempt, attempt.worker_id, attempt.outcome) == (1, "dead", "lost")
    assert attempt.finished_at == clock.now
    assert await event_types(store, job.id) == ["job.enqueued", "job.started", "job.rescued"]
    again = await claim_one(store)
    assert again.attempt == 2


async def test_rescue_discards_an_expired_job_with_no_attempts_left(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=1)
    job = await claim_one(store)
    clock.advance(LEASE + 1)
    assert await store.rescue_expired() == [job.id]
    dead = await store.get_job(TENANT, job.id)
    assert dead.state is S.DISCARDED
    assert dead.finished_at == clock.now
    assert dead.lease_expires_at is None
    assert [a.outcome for a in await store.list_attempts(TENANT, job.id)] == ["lost"]
    assert await event_types(store, job.id) == ["job.enqueued", "job.started", "job.discarded"]
    assert await claim(store) == []


async def test_rescue_leaves_a_lease_that_has_not_expired(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store)
    clock.advance(LEASE - 1)
    assert await store.rescue_expired() == []
    assert await state_of(store, job) is S.RUNNING


async def test_a_job_still_heartbeating_is_never_rescued(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store, worker="w")
    for _ in range(10):  # five lease lengths, heartbeating every 2/3 of a lease
        clock.advance(LEASE * 2 / 3)
        assert await store.heartbeat("w", [(job.id, job.attempt)], LEASE) == {job.id}
        assert await store.rescue_expired() == []
    clock.advance(LEASE + 1)
    assert await store.rescue_expired() == [job.id]


async def test_rescue_with_nothing_expired_changes_nothing(store: Store) -> None:
    assert await store.rescue_expired() == []


# -- promote and due times -------------------------------------------------------------


async def test_promote_due_makes_a_scheduled_job_available_when_its_time_comes(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue(delay=60)
    clock.advance(59)
    assert await store.promote_due() == 0
    assert await state_of(store, job) is S.SCHEDULED
    clock.advance(1)
    assert await store.promote_due() == 1
    assert await state_of(store, job) is S.AVAILABLE
    assert await event_types(store, job.id) == ["job.enqueued", "job.available"]
    assert [j.id for j in await claim(store)] == [job.id]


async def test_promote_due_makes_a_retryable_job_available_after_its_backoff(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=2)
    job = await claim_one(store)
    assert await finish(store, job, Failed(BOOM, retry_in=15), clock())
    clock.advance(14)
    assert await store.promote_due() == 0
    clock.advance(1)
    assert await store.promote_due() == 1
    assert await state_of(store, job) is S.AVAILABLE
    assert (await claim_one(store)).attempt == 2


async def test_promote_due_takes_the_earliest_first_up_to_its_limit(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    third = await enqueue(delay=30)
    first = await enqueue(delay=10)
    second = await enqueue(delay=20)
    clock.advance(60)
    assert await store.promote_due(limit=2) == 2
    states = [await state_of(store, j) for j in (first, second, third)]
    assert states == [S.AVAILABLE, S.AVAILABLE, S.SCHEDULED]
    assert await store.promote_due(limit=2) == 1


async def test_next_due_at_is_when_the_earliest_waiting_job_is_due(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    start = clock.now
    assert await store.next_due_at() is None
    await enqueue()  # available: not waiting
    assert await store.next_due_at() is None
    await enqueue(delay=300)
    assert await store.next_due_at() == start + timedelta(seconds=300)
    await enqueue(max_attempts=2)
    job = await claim_one(store)
    assert await finish(store, job, Failed(BOOM, retry_in=40), clock())
    assert await store.next_due_at() == start + timedelta(seconds=40)


# -- cancel and retry -----------------------------------------------------------------


async def _job_in(state: JobState, store: Store, clock: FakeClock, enqueue: Enqueue) -> Job:
    """A fresh job brought to ``state`` through the store's own operations."""
    if state is S.SCHEDULED:
        return await enqueue(delay=3600)
    job = await enqueue(max_attempts=2)
    if state is S.AVAILABLE:
        return job
    running = await claim_one(store)
    outcomes: dict[JobState, Outcome] = {
        S.COMPLETED: Completed("ok"),
        S.RETRYABLE: Failed(BOOM),
        S.DISCARDED: Discarded(BOOM),
    }
    if state in outcomes:
        assert await finish(store, running, outcomes[state], clock())
    elif state is S.CANCELLED:
        await store.cancel_job(TENANT, job.id, "not needed")
    stored = await store.get_job(TENANT, job.id)
    assert stored.state is state
    return stored


@pytest.mark.parametrize("state", [S.SCHEDULED, S.AVAILABLE, S.RETRYABLE, S.RUNNING])
async def test_cancel_ends_a_job_that_has_not_finished(
    state: JobState, store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await _job_in(state, store, clock, enqueue)
    clock.advance(2)
    cancelled = await store.cancel_job(TENANT, job.id, "customer asked")
    assert cancelled.state is S.CANCELLED
    assert cancelled.finished_at == clock.now
    assert cancelled.lease_expires_at is None
    assert await store.get_job(TENANT, job.id) == cancelled
    events = [e for e in await store.list_events(TENANT) if e.job_id == job.id]
    assert events[-1].type == "job.cancelled"
    assert events[-1].data["reason"] == "customer asked"
    assert await claim(store) == []


async def test_cancelling_a_running_job_records_its_attempt_and_fences_the_worker(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store, worker="w")
    await store.cancel_job(TENANT, job.id, "stop")
    (attempt,) = await store.list_attempts(TENANT, job.id)
    assert (attempt.attempt, attempt.worker_id, attempt.outcome) == (1, "w", "cancelled")
    assert await store.heartbeat("w", [(job.id, job.attempt)], 60) == set()
    assert not await store.record_progress(job.id, job.attempt, 0.5, None)
    assert not await finish(store, job, Completed(), clock())
    assert await state_of(store, job) is S.CANCELLED


@pytest.mark.parametrize("state", [S.COMPLETED, S.DISCARDED, S.CANCELLED])
async def test_cancel_of_a_finished_job_is_an_illegal_transition(
    state: JobState, store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await _job_in(state, store, clock, enqueue)
    before = await event_types(store, job.id)
    with pytest.raises(IllegalTransition) as caught:
        await store.cancel_job(TENANT, job.id, "too late")
    assert caught.value.from_state == state
    assert caught.value.to_state == S.CANCELLED
    assert caught.value.job_id == job.id
    assert await store.get_job(TENANT, job.id) == job
    assert await event_types(store, job.id) == before


async def test_cancel_of_an_unknown_job_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.cancel_job(TENANT, 999_999, "nope")


@pytest.mark.parametrize("state", [S.DISCARDED, S.COMPLETED, S.CANCELLED])
async def test_retry_makes_a_finished_job_available_again_keeping_its_history(
    state: JobState, store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await _job_in(state, store, clock, enqueue)
    history = await store.list_attempts(TENANT, job.id)
    clock.advance(100)
    retried = await store.retry_job(TENANT, job.id)
    assert retried.state is S.AVAILABLE
    assert retried.attempt == job.attempt
    assert retried.run_at <= clock.now
    assert retried.finished_at is None
    assert await store.list_attempts(TENANT, job.id) == history
    assert (await event_types(store, job.id))[-1] == "job.retried"
    again = await claim_one(store)
    assert again.id == job.id
    assert again.attempt == job.attempt + 1
    assert await finish(store, again, Completed("second time"), clock())
    attempts = await store.list_attempts(TENANT, job.id)
    assert attempts[: len(history)] == history
    assert attempts[-1].attempt == again.attempt
    assert attempts[-1].outcome == "completed"


async def test_retry_of_an_exhausted_job_allows_one_more_attempt(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=1)
    job = await claim_one(store)
    assert await finish(store, job, Failed(BOOM), clock())
    retried = await store.retry_job(TENANT, job.id)
    assert retried.max_attempts >= 2
    again = await claim_one(store)
    assert again.attempt == 2
    assert again.attempt <= again.max_attempts
    assert await finish(store, again, Failed(BOOM), clock())
    assert await state_of(store, job) is S.DISCARDED
    outcomes = [a.outcome for a in await store.list_attempts(TENANT, job.id)]
    assert outcomes == ["discarded", "discarded"]


@pytest.mark.parametrize("state", [S.SCHEDULED, S.AVAILABLE, S.RUNNING, S.RETRYABLE])
async def test_retry_of_a_job_that_has_not_finished_is_an_illegal_transition(
    state: JobState, store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await _job_in(state, store, clock, enqueue)
    before = await event_types(store, job.id)
    with pytest.raises(IllegalTransition) as caught:
        await store.retry_job(TENANT, job.id)
    assert caught.value.from_state == state
    assert caught.value.to_state == S.AVAILABLE
    assert await store.get_job(TENANT, job.id) == job
    assert await event_types(store, job.id) == before


# -- what a running attempt adds ----------------------------------------------------------


async def test_progress_is_recorded_only_for_the_running_attempt(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=3)
    job = await claim_one(store)
    assert await store.record_progress(job.id, job.attempt, 0.25, "a quarter")
    stored = await store.get_job(TENANT, job.id)
    assert (stored.progress, stored.progress_message) == (0.25, "a quarter")
    assert not await store.record_progress(job.id, job.attempt + 1, 0.5, "wrong attempt")
    assert await finish(store, job, Failed(BOOM, retry_in=0), clock())
    assert not await store.record_progress(job.id, job.attempt, 0.75, "after the end")
    stored = await store.get_job(TENANT, job.id)
    assert (stored.progress, stored.progress_message) == (0.25, "a quarter")
    progress = [e for e in await store.list_events(TENANT) if e.type == "job.progress"]
    assert [(e.job_id, e.data["progress"], e.data["message"]) for e in progress] == [
        (job.id, 0.25, "a quarter")
    ]


async def test_a_new_attempt_starts_without_the_last_attempts_progress(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(max_attempts=3)
    job = await claim_one(store)
    await store.record_progress(job.id, job.attempt, 0.9, "almost")
    assert await finish(store, job, Failed(BOOM, retry_in=0), clock())
    await store.promote_due()
    again = await claim_one(store)
    assert (again.progress, again.progress_message) == (None, None)


async def test_a_note_is_added_only_to_the_running_attempt(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store)
    assert await store.add_note(job.id, job.attempt, "replaced the pump")
    assert not await store.add_note(job.id, job.attempt - 1, "stale attempt")
    assert await finish(store, job, Completed(), clock())
    assert not await store.add_note(job.id, job.attempt, "after the end")
    notes = [e for e in await store.list_events(TENANT) if e.type == "job.note"]
    assert [(n.job_id, n.data["text"]) for n in notes] == [(job.id, "replaced the pump")]


async def test_an_artifact_is_recorded_only_for_the_running_attempt(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue()
    job = await claim_one(store)
    digest = "ab" * 32
    artifact = await store.add_artifact(job.id, job.attempt, "backup.zip", 2048, digest, "a/b.zip")
    assert (artifact.job_id, artifact.name, artifact.size) == (job.id, "backup.zip", 2048)
    assert (artifact.sha256, artifact.path) == (digest, "a/b.zip")
    assert artifact.created_at == clock.now
    with pytest.raises(NotFound):
        await store.add_artifact(job.id, job.attempt + 1, "other.zip", 1, digest, "x")
    assert await finish(store, job, Completed(), clock())
    with pytest.raises(NotFound):
        await store.add_artifact(job.id, job.attempt, "late.zip", 1, digest, "y")
    assert await store.list_artifacts(TENANT, job.id) == [artifact]
    assert "job.artifact" in await event_types(store, job.id)


# -- lists and counts ---------------------------------------------------------------------


async def test_list_jobs_filters_by_each_field(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    plain = await enqueue("report.build")
    mail = await enqueue("email.send", queue="mail", tags=["x", "urgent"])
    keyed = await enqueue("report.build", key="contact:7", assignee="tech-1")
    later = await enqueue("report.build", delay=60, tags=["urgent"])

    async def ids(**filters: object) -> list[int]:
        jobs = await store.list_jobs(TENANT, JobFilter(newest_first=False, **filters))  # type: ignore[arg-type]
        return [j.id for j in jobs]

    assert await ids() == [plain.id, mail.id, keyed.id, later.id]
    assert await ids(state=S.SCHEDULED) == [later.id]
    assert await ids(state=S.AVAILABLE) == [plain.id, mail.id, keyed.id]
    assert await ids(queue="mail") == [mail.id]
    assert await ids(task="report.build") == [plain.id, keyed.id, later.id]
    assert await ids(key="contact:7") == [keyed.id]
    assert await ids(tag="urgent") == [mail.id, later.id]
    assert await ids(tag="urg") == []
    assert await ids(assignee="tech-1") == [keyed.id]
    assert await ids(task="report.build", state=S.AVAILABLE, queue="default") == [
        plain.id,
        keyed.id,
    ]
    assert await ids(queue="nowhere") == []


async def test_list_jobs_pages_newest_first_with_a_cursor(store: Store, enqueue: Enqueue) -> None:
    created = [(await enqueue(payload=n)).id for n in range(7)]
    pages: list[list[int]] = []
    cursor: int | None = None
    while True:
        page = await store.list_jobs(TENANT, JobFilter(limit=3, after_id=cursor))
        if not page:
            break
        pages.append([j.id for j in page])
        cursor = page[-1].id
    assert pages == [created[6:3:-1], created[3:0:-1], created[0:1]]


async def test_list_jobs_pages_oldest_first_with_a_cursor(store: Store, enqueue: Enqueue) -> None:
    created = [(await enqueue(payload=n)).id for n in range(5)]
    first = await store.list_jobs(TENANT, JobFilter(limit=2, newest_first=False))
    assert [j.id for j in first] == created[:2]
    rest = await store.list_jobs(
        TENANT, JobFilter(limit=10, newest_first=False, after_id=first[-1].id)
    )
    assert [j.id for j in rest] == created[2:]


async def test_count_jobs_counts_by_queue_and_state(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    assert await store.count_jobs(TENANT) == {}
    for _ in range(3):
        await enqueue(queue="mail")
    await enqueue(queue="mail", delay=60)
    await enqueue(queue="reports")
    job = await claim_one(store, queue="reports")
    assert await finish(store, job, Completed(), clock())
    await claim_one(store, queue="mail")
    assert await store.count_jobs(TENANT) == {
        ("mail", S.AVAILABLE): 2,
        ("mail", S.RUNNING): 1,
        ("mail", S.SCHEDULED): 1,
        ("reports", S.COMPLETED): 1,
    }


async def test_list_queues_shows_queues_with_jobs_or_settings(
    store: Store, enqueue: Enqueue
) -> None:
    assert await store.list_queues(TENANT) == []
    await enqueue(queue="mail")
    await enqueue(queue="mail")
    await enqueue(queue="reports", delay=60)
    await store.pause_queue(TENANT, "idle", True)
    await store.limit_queue(TENANT, "reports", 4)
    queues = {q.name: q for q in await store.list_queues(TENANT)}
    assert sorted(queues) == ["idle", "mail", "reports"]
    assert (queues["idle"].paused, queues["idle"].concurrency, queues["idle"].counts) == (
        True,
        None,
        {},
    )
    assert (queues["mail"].paused, queues["mail"].counts) == (False, {S.AVAILABLE: 2})
    assert (queues["reports"].concurrency, queues["reports"].counts) == (4, {S.SCHEDULED: 1})


async def test_queue_names_are_checked(store: Store) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.pause_queue(TENANT, "bad name", True)
    assert caught.value.field == "queue"


# -- events ---------------------------------------------------------------------------------


async def test_a_full_lifecycle_writes_one_event_per_change_in_order(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue(max_attempts=3, delay=5)
    clock.advance(5)
    await store.promote_due()  # scheduled -> available
    first = await claim_one(store)  # -> running
    assert await finish(store, first, Failed(BOOM, retry_in=1), clock())  # -> retryable
    clock.advance(1)
    await store.promote_due()  # -> available
    second = await claim_one(store)  # -> running
    clock.advance(LEASE + 1)
    await store.rescue_expired()  # -> available
    third = await claim_one(store)  # -> running
    assert await finish(store, third, Completed(), clock())  # -> completed
    await store.retry_job(TENANT, job.id)  # -> available
    await store.cancel_job(TENANT, job.id, "enough")  # -> cancelled
    assert second.attempt == 2
    events = [e for e in await store.list_events(TENANT, 0, 1000) if e.job_id == job.id]
    assert [e.type for e in events] == [
        "job.enqueued",
        "job.available",
        "job.started",
        "job.retrying",
        "job.available",
        "job.started",
        "job.rescued",
        "job.started",
        "job.succeeded",
        "job.retried",
        "job.cancelled",
    ]
    assert [e.data["attempt"] for e in events if e.type == "job.started"] == [1, 2, 3]
    ids = [e.id for e in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(e.tenant_id == TENANT for e in events)
    assert events[-1].created_at == clock.now


async def test_a_claim_writes_one_started_event_per_job_in_claim_order(
    store: Store, enqueue: Enqueue
) -> None:
    low = await enqueue("report.build", priority=7)
    high = await enqueue("mail.send", priority=1)
    middle = await enqueue("report.build", priority=4)
    claimed = await store.claim(TENANT, "default", "worker-ü", 10, LEASE)
    assert [job.id for job in claimed] == [high.id, middle.id, low.id]
    started = [e for e in await store.list_events(TENANT, 0, 100) if e.type == "job.started"]
    assert [(e.job_id, e.tenant_id, e.data) for e in started] == [
        (job.id, TENANT, {"attempt": 1, "worker_id": "worker-ü", "task": job.task})
        for job in (high, middle, low)
    ]


async def test_every_job_gets_its_own_events(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    a = await enqueue()
    b = await enqueue()
    c = await enqueue(delay=60)
    first, second = await claim(store, 2)
    assert await finish(store, first, Completed(), clock())
    assert await finish(store, second, Discarded(BOOM), clock())
    per_job = Counter(e.job_id for e in await store.list_events(TENANT))
    assert per_job == {a.id: 3, b.id: 3, c.id: 1}


async def test_list_events_pages_with_a_cursor_and_a_limit(store: Store, enqueue: Enqueue) -> None:
    for _ in range(5):
        await enqueue()
    everything = await store.list_events(TENANT, 0, 100)
    assert len(everything) == 5
    first = await store.list_events(TENANT, 0, 2)
    rest = await store.list_events(TENANT, first[-1].id, 100)
    assert first + rest == everything
    assert await store.list_events(TENANT, everything[-1].id) == []
    assert await store.list_events(None, 0, 100) == everything


async def test_the_event_horizon_is_a_cursor_for_what_commits_from_now_on(
    store: Store, enqueue: Enqueue
) -> None:
    assert await store.event_horizon() == 0
    for _ in range(3):
        await enqueue()
    horizon = await store.event_horizon()
    assert horizon == (await store.list_events(None, 0, 100))[-1].id
    assert await store.list_events(None, horizon) == []
    assert await store.event_horizon(horizon) == horizon
    first = (await store.list_events(None, 0, 1))[0].id
    assert first < horizon
    assert await store.event_horizon(first) == horizon
    assert await store.event_horizon(horizon + 1000) == horizon + 1000  # never behind
    job = await enqueue()
    assert [(e.type, e.job_id) for e in await store.list_events(None, horizon)] == [
        ("job.enqueued", job.id)
    ]


async def test_committed_events_are_listed_while_another_database_has_a_transaction_open(
    store: Store, database_url: str, enqueue: Enqueue
) -> None:
    # Only PostgreSQL shares one transaction-id space between databases: a writing
    # transaction left open in any database of the server must not hide our events.
    if store.dialect != "postgres":
        pytest.skip("SQLite files share no transactions")
    elsewhere = database_url.rpartition("/")[0] + "/postgres"
    with psycopg.connect(elsewhere) as other:
        other.execute("SELECT pg_current_xact_id()")  # holds a transaction id, open
        job = await enqueue()
        listed = await store.list_events(TENANT)
        other.rollback()
    assert [(e.type, e.job_id) for e in listed] == [("job.enqueued", job.id)]


async def test_refused_changes_write_no_event(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    await enqueue(message_id="once")
    job = await claim_one(store)
    assert await finish(store, job, Completed(), clock())
    before = await store.list_events(TENANT, 0, 1000)
    await enqueue(message_id="once")
    assert not await finish(store, job, Completed(), clock())
    with pytest.raises(IllegalTransition):
        await store.cancel_job(TENANT, job.id, "late")
    assert not await store.record_progress(job.id, job.attempt, 0.5, None)
    assert not await store.add_note(job.id, job.attempt, "late")
    assert await store.heartbeat("worker-1", [(job.id, job.attempt)], 60) == set()
    assert await claim(store) == []
    assert await store.rescue_expired() == []
    assert await store.promote_due() == 0
    assert await store.list_events(TENANT, 0, 1000) == before


# -- schema -----------------------------------------------------------------------------------


async def test_a_migrated_store_is_at_the_latest_schema_version(store: Store) -> None:
    latest = migration_files(store.dialect)[-1][0]
    assert await store.schema_version() == latest
    await store.check_schema()
    assert await store.migrate() == []
    assert await store.schema_version() == latest


async def test_an_empty_database_is_at_version_zero_and_fails_the_schema_check(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    if store.dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        drop = None
    else:
        name = f"conveyor_empty_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = database_url.rpartition("/")[0] + f"/{name}"
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    empty = store_from_url(url)
    await empty.open()
    try:
        assert await empty.schema_version() == 0
        with pytest.raises(SchemaOutdated) as caught:
            await empty.check_schema()
        latest = migration_files(store.dialect)[-1][0]
        assert (caught.value.current, caught.value.required) == (0, latest)
        assert await empty.migrate() == [
            version for version, _, _ in migration_files(store.dialect)
        ]
        await empty.check_schema()
    finally:
        await empty.close()
        if drop is not None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(drop)


# -- workers ----------------------------------------------------------------------------------


def _worker(worker_id: str, started_at: datetime) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        tenant_id=TENANT,
        hostname="host-a",
        pid=4242,
        queues=("default", "mail"),
        concurrency=8,
        started_at=started_at,
        last_seen_at=started_at,
    )


async def test_workers_are_listed_after_registering_and_forgotten_after_unregistering(
    store: Store, clock: FakeClock
) -> None:
    assert await store.list_workers(TENANT) == []
    first = _worker("w-1", clock.now)
    await store.register_worker(first)
    clock.advance(1)
    second = _worker("w-2", clock.now)
    await store.register_worker(second)
    assert await store.list_workers(TENANT) == [first, second]
    await store.unregister_worker("w-1")
    assert await store.list_workers(TENANT) == [second]
    await store.unregister_worker("w-1")  # forgetting twice is harmless
    assert [w.id for w in await store.list_workers(TENANT)] == ["w-2"]


async def test_registering_again_refreshes_when_the_worker_was_last_seen(
    store: Store, clock: FakeClock
) -> None:
    started = clock.now
    await store.register_worker(_worker("w-1", started))
    clock.advance(15)
    await store.register_worker(_worker("w-1", started))
    (seen,) = await store.list_workers(TENANT)
    assert seen.started_at == started
    assert seen.last_seen_at == clock.now
    assert seen.started_at.tzinfo is not None
    assert seen.last_seen_at.astimezone(UTC) == clock.now
