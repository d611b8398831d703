"""Concurrent enqueues share transactions (group commit) without mixing up results."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import new_job
from conveyor.store.protocol import Store

pytestmark = pytest.mark.anyio


async def test_concurrent_enqueues_each_get_their_own_jobs(store: Store) -> None:
    now = store.clock()
    requests = [[new_job("t", {"n": n, "i": i}, now=now) for i in range(3)] for n in range(20)]
    results = await asyncio.gather(*(store.enqueue(jobs) for jobs in requests))
    for n, jobs in enumerate(results):
        assert [job.payload for job in jobs] == [{"n": n, "i": i} for i in range(3)]
    ids = [job.id for jobs in results for job in jobs]
    assert len(set(ids)) == 60


async def test_the_same_message_id_at_once_makes_one_job(store: Store) -> None:
    now = store.clock()
    calls = [store.enqueue([new_job("t", {"n": n}, message_id="m-1", now=now)]) for n in range(10)]
    results = await asyncio.gather(*calls)
    assert len({jobs[0].id for jobs in results}) == 1


async def test_a_failing_enqueue_does_not_fail_its_neighbours(store: Store) -> None:
    now = store.clock()
    good = [store.enqueue([new_job("t", {"n": n}, now=now)]) for n in range(5)]
    orphan = new_job("t", None, tenant_id="no-such-tenant", now=now)
    outcomes = await asyncio.gather(*good, store.enqueue([orphan]), return_exceptions=True)
    assert all(isinstance(result, list) for result in outcomes[:5])
    assert isinstance(outcomes[5], Exception)
    assert not isinstance(outcomes[5], InvalidInput)
