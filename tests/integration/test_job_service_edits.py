"""JobService.edit: the tenant's jobs only, an agent's own jobs only, and the shell
permission for a ``shell`` job, on both stores."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.domain.errors import NotFound, PermissionDenied
from conveyor.domain.jobs import Job, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.services.jobs import JobService
from conveyor.store.protocol import Store

pytestmark = pytest.mark.anyio

TENANT = "default"


async def _job(store: Store, task: str = "report.build", **fields: Any) -> Job:
    [job] = await store.enqueue([new_job(task, {"n": 1}, delay=3600, **fields)])
    return job


async def test_an_edit_through_the_service_is_stored_with_its_event(store: Store) -> None:
    job = await _job(store)
    edited = await JobService(store, TENANT).edit(job.id, {"payload": {"n": 2}, "delay": 0})
    assert (edited.payload, edited.state) == ({"n": 2}, JobState.AVAILABLE)
    assert (await store.list_job_events(TENANT, job.id))[-1].type == "job.edited"


async def test_another_tenants_job_does_not_exist(store: Store) -> None:
    job = await _job(store)
    with pytest.raises(NotFound):
        await JobService(store, "globex").edit(job.id, {"priority": 0})
    assert await store.get_job(TENANT, job.id) == job


async def test_an_agent_edits_only_its_own_jobs_and_keeps_them(store: Store) -> None:
    mine = await _job(store, assignee="carl@acme.test")
    other = await _job(store, assignee="dora@acme.test")
    carl = JobService(store, TENANT, assigned_to="carl@acme.test")
    assert (await carl.edit(mine.id, {"priority": 1})).priority == 1
    with pytest.raises(NotFound):
        await carl.edit(other.id, {"priority": 1})
    with pytest.raises(PermissionDenied):
        await carl.edit(mine.id, {"assignee": "dora@acme.test"})
    assert (await store.get_job(TENANT, mine.id)).assignee == "carl@acme.test"


async def test_changing_a_shell_job_needs_the_right_to_create_one(store: Store) -> None:
    job = await _job(store, "shell", queue="shell")
    member = JobService(store, TENANT, shell_tasks=True, may_run_shell=False)
    with pytest.raises(PermissionDenied):
        await member.edit(job.id, {"payload": {"command": "rm -rf /"}})
    assert await store.get_job(TENANT, job.id) == job
    owner = JobService(store, TENANT, shell_tasks=True, may_run_shell=True)
    assert (await owner.edit(job.id, {"priority": 0})).priority == 0
