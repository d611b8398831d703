"""Events: the append-only record of everything that happened (the outbox)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from conveyor.domain.lifecycle import JobState


class EventType(StrEnum):
    """What an event says happened."""

    JOB_ENQUEUED = "job.enqueued"
    JOB_AVAILABLE = "job.available"
    JOB_STARTED = "job.started"
    JOB_PROGRESS = "job.progress"
    JOB_NOTE = "job.note"
    JOB_ARTIFACT = "job.artifact"
    JOB_SUCCEEDED = "job.succeeded"
    JOB_RETRYING = "job.retrying"
    JOB_DISCARDED = "job.discarded"
    JOB_CANCELLED = "job.cancelled"
    JOB_RETRIED = "job.retried"
    JOB_RESCUED = "job.rescued"
    JOB_EDITED = "job.edited"
    QUEUE_PAUSED = "queue.paused"
    QUEUE_RESUMED = "queue.resumed"
    QUEUE_CHANGED = "queue.changed"
    SCHEDULE_FIRED = "schedule.fired"
    SCHEDULE_SKIPPED = "schedule.skipped"
    WEBHOOK_DISABLED = "webhook.disabled"
    HOOK_RECEIVED = "hook.received"


# The event a job's arrival in a state is announced with, for changes that are
# plain state arrivals (claims, completions, failures).
ARRIVAL_EVENT: dict[JobState, EventType] = {
    JobState.SCHEDULED: EventType.JOB_ENQUEUED,
    JobState.AVAILABLE: EventType.JOB_AVAILABLE,
    JobState.RUNNING: EventType.JOB_STARTED,
    JobState.COMPLETED: EventType.JOB_SUCCEEDED,
    JobState.RETRYABLE: EventType.JOB_RETRYING,
    JobState.DISCARDED: EventType.JOB_DISCARDED,
    JobState.CANCELLED: EventType.JOB_CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, in the order it was committed."""

    id: int
    tenant_id: str
    type: str
    job_id: int | None
    data: dict[str, Any]
    created_at: datetime


AGENT_EVENT_KEYS = frozenset(
    {"attempt", "error", "fields", "from", "message", "name", "progress", "queue", "reason"}
    | {"retry_at", "sha256", "size", "state", "task", "text", "to", "worker_id"}
)
"""The event data an agent sees: what the job's own events carry, never who acted
(a key added later, such as an editor's email, stays hidden until it is listed)."""


def as_agent_sees_it(event: Event) -> Event:
    """``event`` with only the data an agent may see (``AGENT_EVENT_KEYS``)."""
    return replace(event, data={k: v for k, v in event.data.items() if k in AGENT_EVENT_KEYS})
