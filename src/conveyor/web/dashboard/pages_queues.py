"""``/queues`` (pause, resume, concurrency limit) and ``/workers`` (heartbeats)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from conveyor.domain.digits import whole_number
from conveyor.domain.errors import InvalidInput
from conveyor.web.dashboard.access import CheckedForm, Staff, Writer, jobs_of
from conveyor.web.dashboard.pages_overview import ONLINE_SECONDS
from conveyor.web.dashboard.render import page
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import Viewer

router = dashboard_router()

QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
MAX_CONCURRENCY = 100_000


def _queue(name: str) -> str:
    if not QUEUE_NAME.match(name):
        raise InvalidInput("queue", "is not a queue name")
    return name


def _concurrency(raw: object) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    return whole_number("concurrency", text, 1, MAX_CONCURRENCY)


async def queues_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    """The tenant's queues with their counts."""
    return {"queues": await jobs_of(request, viewer).queues()}


@router.get("/queues")
async def queue_list(request: Request, viewer: Staff) -> Response:
    """Every queue with its job counts, pause state and concurrency limit."""
    context = await queues_context(request, viewer)
    return page(request, "queues.html", viewer, section="queues", **context)


@router.get("/fragments/queues")
async def queue_rows(request: Request, viewer: Staff) -> Response:
    """The queue table, fetched again when events arrive."""
    context = await queues_context(request, viewer)
    return page(request, "_queue_rows.html", viewer, **context)


@router.post("/queues/{name}/pause")
async def pause_queue(request: Request, viewer: Writer, form: CheckedForm, name: str) -> Response:
    """Stop claims from a queue (running jobs finish)."""
    await jobs_of(request, viewer).pause_queue(_queue(name), True)
    return RedirectResponse("/queues", status_code=303)


@router.post("/queues/{name}/resume")
async def resume_queue(request: Request, viewer: Writer, form: CheckedForm, name: str) -> Response:
    """Start claiming a queue's jobs again."""
    await jobs_of(request, viewer).pause_queue(_queue(name), False)
    return RedirectResponse("/queues", status_code=303)


@router.post("/queues/{name}/concurrency")
async def limit_queue(request: Request, viewer: Writer, form: CheckedForm, name: str) -> Response:
    """Cap a queue's running jobs across workers (empty: no cap)."""
    limit = _concurrency(form.get("concurrency"))
    await jobs_of(request, viewer).limit_queue(_queue(name), limit)
    return RedirectResponse("/queues", status_code=303)


async def workers_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    """The tenant's workers, most recently seen first."""
    workers = await jobs_of(request, viewer).workers()
    return {
        "workers": sorted(workers, key=lambda w: w.last_seen_at, reverse=True),
        "online_seconds": ONLINE_SECONDS,
    }


@router.get("/workers")
async def worker_list(request: Request, viewer: Staff) -> Response:
    """Worker processes with their queues, concurrency and last heartbeat."""
    context = await workers_context(request, viewer)
    return page(request, "workers.html", viewer, section="workers", **context)


@router.get("/fragments/workers")
async def worker_rows(request: Request, viewer: Staff) -> Response:
    """The worker table, fetched again every few seconds."""
    context = await workers_context(request, viewer)
    return page(request, "_worker_rows.html", viewer, **context)
