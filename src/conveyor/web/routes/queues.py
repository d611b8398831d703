"""``/api/v1/queues``, ``/api/v1/workers`` and ``/api/v1/events``: the engine's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from conveyor.domain.accounts import Principal
from conveyor.domain.errors import PermissionDenied
from conveyor.web.auth import Caller, ReadJobs, WriteJobs
from conveyor.web.routes.params import After, Limit
from conveyor.web.schemas import ConcurrencyIn, EventOut, EventPage, QueueOut, WorkerOut

router = APIRouter()

QueueName = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
]


def _not_agent(principal: Principal) -> None:
    if principal.assigned_only:
        raise PermissionDenied("agents see only the jobs assigned to them")


@router.get("/queues", tags=["queues"], summary="List queues")
async def list_queues(jobs: ReadJobs, principal: Caller) -> list[QueueOut]:
    """Every queue with its settings and job counts by state."""
    _not_agent(principal)
    return [QueueOut.of(queue) for queue in await jobs.queues()]


@router.post("/queues/{name}/pause", tags=["queues"], summary="Pause a queue")
async def pause_queue(name: QueueName, jobs: WriteJobs) -> QueueOut:
    """No new job of this queue starts until it is resumed; running jobs finish."""
    return QueueOut.of(await jobs.pause_queue(name, True))


@router.post("/queues/{name}/resume", tags=["queues"], summary="Resume a queue")
async def resume_queue(name: QueueName, jobs: WriteJobs) -> QueueOut:
    """Start claiming this queue's jobs again."""
    return QueueOut.of(await jobs.pause_queue(name, False))


@router.put("/queues/{name}/concurrency", tags=["queues"], summary="Cap a queue")
async def set_concurrency(name: QueueName, body: ConcurrencyIn, jobs: WriteJobs) -> QueueOut:
    """At most this many of the queue's jobs run at once, across all workers."""
    return QueueOut.of(await jobs.limit_queue(name, body.concurrency))


@router.get("/workers", tags=["workers"], summary="List workers")
async def list_workers(jobs: ReadJobs, principal: Caller) -> list[WorkerOut]:
    """Worker processes of this tenant with their last heartbeat."""
    _not_agent(principal)
    return [WorkerOut.of(worker) for worker in await jobs.workers()]


@router.get("/events", tags=["events"], summary="List events after a cursor")
async def list_events(jobs: ReadJobs, after: After = 0, limit: Limit = 100) -> EventPage:
    """Everything that happened, in commit order; poll with ``after=next_cursor``."""
    events, cursor = await jobs.events_page(after, limit)
    return EventPage(items=[EventOut.of(e) for e in events], next_cursor=cursor)
