"""``/``: jobs by state and queue, throughput, workers online, next scheduled runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from conveyor.domain.lifecycle import JobState
from conveyor.store.dashboard import HOUR, MINUTE, DashboardQueries
from conveyor.web.dashboard.access import SignedIn, jobs_of
from conveyor.web.dashboard.chart import throughput_chart
from conveyor.web.dashboard.render import page
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import Viewer

router = dashboard_router()

NEXT_RUNS = 8
ONLINE_SECONDS = 60.0
"""A worker whose last heartbeat is older than this is shown as offline."""


@dataclass(frozen=True, slots=True)
class NextRun:
    """A schedule's next fire time."""

    schedule_id: int
    name: str
    task: str
    at: datetime


async def overview_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    """Everything the overview shows, also used by its live fragment."""
    server = request.app.state.server
    jobs = jobs_of(request, viewer)
    now = server.now()
    # Independent reads: on PostgreSQL each takes its own pooled connection.
    finished = DashboardQueries(server.store).finished
    counts, minutes, hours, workers, next_runs = await asyncio.gather(
        jobs.stats(),
        finished(viewer.tenant, now, MINUTE, 60),
        finished(viewer.tenant, now, HOUR, 24),
        jobs.workers(),
        _next_runs(request, viewer),
    )
    by_state: Counter[str] = Counter()
    queues: dict[str, Counter[str]] = {}
    for (queue, state), count in counts.items():
        by_state[state.value] += count
        queues.setdefault(queue, Counter())[state.value] += count
    online = [w for w in workers if (now - w.last_seen_at).total_seconds() <= ONLINE_SECONDS]
    return {
        "by_state": by_state,
        "total": sum(by_state.values()),
        "queues": dict(sorted(queues.items())),
        "chart": throughput_chart(minutes),
        "day_chart": throughput_chart(hours, "%d %b %H:00"),
        "workers_online": online,
        "next_runs": next_runs,
        "active_states": [JobState.RUNNING.value, JobState.AVAILABLE.value],
    }


async def _next_runs(request: Request, viewer: Viewer) -> list[NextRun]:
    schedules = request.app.state.server.schedules_for(viewer.principal)
    upcoming = [
        NextRun(s.id, s.name, s.spec.job.task, s.next_fire_at)
        for s in await schedules.list_schedules()
        if s.spec.enabled and s.next_fire_at is not None
    ]
    return sorted(upcoming, key=lambda run: run.at)[:NEXT_RUNS]


@router.get("/")
async def overview(request: Request, viewer: SignedIn) -> Response:
    """The overview; an agent, who sees only its jobs, goes to the job list."""
    if viewer.is_agent:
        return RedirectResponse("/jobs", status_code=303)
    context = await overview_context(request, viewer)
    return page(request, "overview.html", viewer, section="overview", **context)


@router.get("/fragments/overview")
async def overview_fragment(request: Request, viewer: SignedIn) -> Response:
    """The overview's live part, fetched again by the page when events arrive."""
    if viewer.is_agent:
        return RedirectResponse("/jobs", status_code=303)
    context = await overview_context(request, viewer)
    return page(request, "_overview_live.html", viewer, **context)
