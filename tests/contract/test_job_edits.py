"""Editing a job that has not started, on both stores: what changes, the state a new
``run_at`` gives, the refusal once the job has started, and an edit racing a claim."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from conveyor.domain.errors import NotFound
from conveyor.domain.jobs import Job, job_edit
from conveyor.domain.lifecycle import JobState, NotEditable
from conveyor.store.protocol import Store
from tests.contract.conftest import TENANT, Enqueue, FakeClock
from tests.contract.test_store_contract import _job_in, claim, claim_one, event_types

pytestmark = pytest.mark.anyio

S = JobState


async def edit(store: Store, job: Job, **fields: object) -> Job:
    return await store.edit_job(TENANT, job.id, job_edit(fields, now=store.clock()))


async def test_an_edit_changes_every_field_given_and_records_which(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue("report.build", {"n": 1}, delay=3600, key="k-1", message_id="m-1")
    clock.advance(5)
    edited = await edit(
        store,
        job,
        payload={"n": 2, "text": "é"},
        queue="reports",
        priority=1,
        delay=7200,
        max_attempts=7,
        timeout=2.5,
        key=None,
        tags=["vip", "q3"],
        assignee="carl@acme.test",
    )
    assert await store.get_job(TENANT, job.id) == edited
    assert (edited.payload, edited.queue, edited.priority) == ({"n": 2, "text": "é"}, "reports", 1)
    assert edited.run_at == clock.now + timedelta(seconds=7200)
    assert (edited.max_attempts, edited.timeout, edited.key) == (7, 2.5, None)
    assert (edited.tags, edited.assignee) == (("vip", "q3"), "carl@acme.test")
    assert (edited.state, edited.updated_at) == (S.SCHEDULED, clock.now)
    assert (edited.task, edited.message_id, edited.created_at) == (
        job.task,
        job.message_id,
        job.created_at,
    )
    (event,) = [e for e in await store.list_job_events(TENANT, job.id) if e.type == "job.edited"]
    assert event.data == {
        "fields": [
            "assignee",
            "key",
            "max_attempts",
            "payload",
            "priority",
            "queue",
            "run_at",
            "tags",
            "timeout",
        ],
        "from": "scheduled",
        "to": "scheduled",
    }


async def test_a_run_at_that_has_come_makes_a_scheduled_job_available_at_once(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue(delay=3600)
    edited = await edit(store, job, run_at=clock.now - timedelta(seconds=1))
    assert edited.state is S.AVAILABLE
    assert await store.next_due_at() is None
    assert [j.id for j in await claim(store)] == [job.id]
    assert (await event_types(store, job.id))[-2:] == ["job.edited", "job.started"]


async def test_a_later_run_at_puts_an_available_job_back_to_wait(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue()
    edited = await edit(store, job, delay=60)
    assert edited.state is S.SCHEDULED
    assert await claim(store) == []
    assert await store.next_due_at() == clock.now + timedelta(seconds=60)
    clock.advance(60)
    assert await store.promote_due() == 1
    assert [j.id for j in await claim(store)] == [job.id]


async def test_an_edit_that_leaves_run_at_alone_keeps_the_state(
    store: Store, enqueue: Enqueue
) -> None:
    waiting, ready = await enqueue(delay=60), await enqueue()
    assert (await edit(store, waiting, priority=0)).state is S.SCHEDULED
    assert (await edit(store, ready, priority=0)).state is S.AVAILABLE


async def test_a_new_queue_moves_the_job(store: Store, enqueue: Enqueue) -> None:
    job = await enqueue()
    await edit(store, job, queue="elsewhere")
    assert await claim(store) == []
    assert [j.id for j in await claim(store, queue="elsewhere")] == [job.id]


async def test_an_edit_that_changes_nothing_writes_nothing(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue("t", {"n": 1}, priority=3)
    clock.advance(5)
    assert await edit(store, job, payload={"n": 1}, priority=3, key=None) == job
    assert await store.get_job(TENANT, job.id) == job
    assert await event_types(store, job.id) == ["job.enqueued"]


@pytest.mark.parametrize("state", [S.RUNNING, S.RETRYABLE, S.COMPLETED, S.DISCARDED, S.CANCELLED])
async def test_a_job_that_has_started_or_finished_is_not_edited(
    state: JobState, store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await _job_in(state, store, clock, enqueue)
    before = await event_types(store, job.id)
    with pytest.raises(NotEditable) as caught:
        await edit(store, job, payload={"changed": True}, delay=0)
    assert caught.value.state is state
    assert caught.value.job_id == job.id
    assert await store.get_job(TENANT, job.id) == job
    assert await event_types(store, job.id) == before


async def test_an_unknown_job_or_another_tenants_is_not_found(
    store: Store, enqueue: Enqueue
) -> None:
    job = await enqueue()
    with pytest.raises(NotFound):
        await store.edit_job(TENANT, 999_999, job_edit({"priority": 1}))
    with pytest.raises(NotFound):
        await store.edit_job("globex", job.id, job_edit({"priority": 1}))
    assert await store.get_job(TENANT, job.id) == job


async def test_cancelling_a_scheduled_job_means_it_never_runs(
    store: Store, clock: FakeClock, enqueue: Enqueue
) -> None:
    job = await enqueue(delay=60)
    assert (await store.cancel_job(TENANT, job.id, "not needed")).state is S.CANCELLED
    clock.advance(120)
    assert await store.promote_due() == 0
    assert await claim(store) == []
    with pytest.raises(NotEditable):
        await edit(store, job, delay=0)


async def _returns_soon(wait: asyncio.Task[None]) -> bool:
    """Whether ``wait`` returned well before its ``max_wait`` (a liveness check)."""
    started = time.monotonic()
    await wait
    return time.monotonic() - started < 10


@pytest.mark.parametrize("change", ["enqueue", "edit"])
async def test_an_enqueue_or_an_edit_wakes_this_stores_workers(
    change: str, store: Store, enqueue: Enqueue
) -> None:
    job = await enqueue(delay=3600)
    await store.wait_for_work(0.05)  # start listening; let earlier wake-ups pass
    await store.wait_for_work(0.05)
    wait = asyncio.create_task(store.wait_for_work(30))
    await asyncio.sleep(0.01)
    if change == "enqueue":
        await enqueue(delay=1800)
    else:
        await edit(store, job, delay=1800)
    assert await _returns_soon(wait)


async def test_an_edit_after_the_claim_is_refused_and_the_claim_keeps_the_old_values(
    store: Store, enqueue: Enqueue
) -> None:
    job = await enqueue("t", {"v": "old"}, priority=5)
    claimed = await claim_one(store)
    with pytest.raises(NotEditable) as caught:
        await edit(store, job, payload={"v": "new"}, priority=1)
    assert caught.value.state is S.RUNNING
    assert (claimed.payload, claimed.priority) == ({"v": "old"}, 5)
    assert await store.get_job(TENANT, job.id) == claimed
    assert "job.edited" not in await event_types(store, job.id)


async def _race(
    store: Store, job: Job, payload: dict[str, object], edit_first: bool
) -> tuple[Job | BaseException, list[Job]]:
    """An edit (new payload, priority 1) and a claim at once; the one started first
    alternates, which decides the winner on SQLite's single connection."""
    editing = claiming = None
    if not edit_first:
        claiming = asyncio.ensure_future(claim(store))
    editing = asyncio.ensure_future(edit(store, job, payload=payload, priority=1))
    claiming = claiming or asyncio.ensure_future(claim(store))
    await asyncio.gather(editing, claiming, return_exceptions=True)
    return editing.exception() or editing.result(), claiming.result()


async def test_an_edit_racing_a_claim_lands_whole_or_not_at_all(
    store: Store, enqueue: Enqueue
) -> None:
    for round_ in range(30):  # which one starts first alternates
        job = await enqueue("t", {"v": "old", "round": round_}, priority=5)
        new = {"v": "new", "round": round_}
        edited, claimed = await _race(store, job, new, edit_first=round_ % 2 == 0)
        assert isinstance(claimed, list)
        if isinstance(edited, NotEditable):  # the claim won: it holds the old values
            assert [(j.id, j.payload, j.priority) for j in claimed] == [(job.id, job.payload, 5)]
            assert "job.edited" not in await event_types(store, job.id)
        else:  # the edit won: a claim sees all of it (or skipped the locked row)
            assert isinstance(edited, Job)
            if not claimed:
                claimed = await claim(store)
            assert [(j.id, j.payload, j.priority) for j in claimed] == [(job.id, new, 1)]
        assert (await store.get_job(TENANT, job.id)).state is S.RUNNING
