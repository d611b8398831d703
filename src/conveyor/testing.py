"""Helpers for testing code that uses Conveyor.

``await drain(store, registry)`` runs a worker until nothing is left to do now
(no job available, running, or due within a second, such as a quick retry),
so a test can enqueue jobs, drain, and assert on the results.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from conveyor.domain.errors import ConveyorError
from conveyor.domain.jobs import DEFAULT_TENANT
from conveyor.domain.lifecycle import JobState
from conveyor.runtime.registry import TaskRegistry
from conveyor.runtime.worker import Worker, WorkerSettings
from conveyor.store.protocol import Store

_BUSY = {JobState.AVAILABLE, JobState.RUNNING}
_WAITING = {JobState.SCHEDULED, JobState.RETRYABLE}
SOON = timedelta(seconds=1)
"""A job due within this is work still to do (a retry after a short backoff)."""


async def _idle(store: Store, tenant_id: str) -> bool:
    counts = await store.count_jobs(tenant_id)
    states = {state for (_, state), n in counts.items() if n}
    if states & _BUSY:
        return False
    if not states & _WAITING:
        return True
    # A retry due in a few milliseconds is not "nothing left to do": stopping then
    # would leave it half-way (promoted, never run). No due time at all means what
    # was waiting has been promoted since the counts were read: look again.
    due = await store.next_due_at()
    return due is not None and due > store.clock() + SOON


async def drain(
    store: Store,
    registry: TaskRegistry,
    settings: WorkerSettings | None = None,
    *,
    max_seconds: float = 30.0,
    tenant_id: str = DEFAULT_TENANT,
) -> Worker:
    """Run a worker until no job is available, running or due within a second; return
    it (for counts)."""
    base = settings or WorkerSettings(tenant_id=tenant_id)
    quick = replace(base, heartbeat_seconds=min(base.heartbeat_seconds, 0.2), poll_seconds=0.05)
    worker = Worker(store, registry, quick)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    try:
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            if running.done() or await _idle(store, tenant_id):
                break
        else:
            raise ConveyorError(f"jobs were still running after {max_seconds} s")
    finally:
        stop.set()
        await running
    return worker
