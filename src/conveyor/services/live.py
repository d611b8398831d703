"""Live events: one poller per server fans committed Events out to every subscriber.

The :class:`~conveyor.loops.live_events.EventPoller` is the only reader of the event
table for live clients: it follows ``store.list_events(None, cursor)`` (all tenants,
in commit order) and the :class:`Fanout` offers each Event to the subscriptions of
its tenant, each a bounded queue. A subscriber
that lets its queue fill is cut (never waited for), so one slow client cannot hold
back the others.

A :class:`LiveFeed` is one client's view: its principal's events (an agent's: of
the jobs assigned to it), narrowed by an :class:`EventFilter`, optionally resumed
after an event id. Resuming subscribes first, then replays from the store; live
events that the replay already returned are dropped, so nothing is missed and
nothing is sent twice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from conveyor.domain.errors import InvalidInput, NotFound
from conveyor.domain.events import Event, EventType
from conveyor.domain.jobs import Job
from conveyor.services.jobs import JobService

T = TypeVar("T")

PAGE = 500
MAX_EVENT_ID = 2**63 - 1
"""The largest id a store can hold (a bigint); a larger cursor is bad input."""
"""Events read from the store per query (poller and replay)."""
JOB_CACHE = 1_000
"""Jobs remembered per feed for filtering (queue, task, assignee) before forgetting all."""


class EndReason(StrEnum):
    """Why the server ended a subscription."""

    TOO_SLOW = "too slow: more events queued than the server keeps per client"
    SHUTDOWN = "server shutting down"


class FeedEnded(Exception):
    """The subscription behind a feed was ended by the server."""

    def __init__(self, reason: EndReason) -> None:
        self.reason = reason
        super().__init__(reason.value)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a client wants; ``None`` fields match everything."""

    queue: str | None = None
    task: str | None = None
    job_id: int | None = None
    types: frozenset[str] | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EventFilter:
        """Filters from a client's message or query; ``InvalidInput`` names a bad field."""
        types = values.get("types")
        if isinstance(types, str):
            types = [t for t in types.split(",") if t]
        if types is not None and not (
            isinstance(types, list) and all(isinstance(t, str) for t in types)
        ):
            raise InvalidInput("types", "must be a list of event types")
        return cls(
            queue=_optional(values, "queue", str),
            task=_optional(values, "task", str),
            job_id=_optional(values, "job_id", int),
            types=frozenset(types) if types else None,
        )

    def needs_job(self) -> bool:
        """Whether matching needs the event's job (its queue or task)."""
        return self.queue is not None or self.task is not None


def _optional(values: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    value = values.get(name)
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    raise InvalidInput(name, f"must be {'an integer' if kind is int else 'a string'}")


def event_cursor(value: Any) -> int | None:
    """A client's ``last_event_id`` as a cursor, or ``None``; ``InvalidInput`` if bad."""
    if value is None or value == "":
        return None
    try:
        cursor = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("last_event_id", "must be an event id (an integer)") from None
    if not 0 <= cursor <= MAX_EVENT_ID:
        raise InvalidInput("last_event_id", f"must be an event id from 0 to {MAX_EVENT_ID}")
    return cursor


@dataclass(eq=False)
class Subscription:
    """One client's place in the fan-out: a bounded queue of its tenant's events."""

    tenant_id: str
    max_queued: int
    on_end: Callable[[EndReason], None] | None = None
    ended: EndReason | None = None
    _queue: asyncio.Queue[Event | None] = field(init=False, default_factory=asyncio.Queue)

    def offer(self, event: Event) -> bool:
        """Queue ``event`` without waiting; a full queue ends the subscription."""
        if self._queue.qsize() >= self.max_queued:
            self.end(EndReason.TOO_SLOW)
            return False
        self._queue.put_nowait(event)
        return True

    def end(self, reason: EndReason) -> None:
        """Stop this subscription (once) and tell its owner why."""
        if self.ended is not None:
            return
        self.ended = reason
        self._queue.put_nowait(None)  # wakes a reader waiting in get()
        if self.on_end is not None:
            self.on_end(reason)

    async def get(self, max_wait: float | None) -> Event | None:
        """The next queued event, or ``None`` after ``max_wait`` seconds; once the
        events queued before the end are taken, ``FeedEnded``."""
        try:
            event = await asyncio.wait_for(self._queue.get(), max_wait)
        except TimeoutError:
            return None
        if event is None:
            self._queue.put_nowait(None)  # the end stays the last item for every call
            raise FeedEnded(self.ended or EndReason.SHUTDOWN)
        return event


class Fanout:
    """The live subscriptions of this process; the EventPoller publishes to them."""

    def __init__(self, max_queued: int) -> None:
        self.max_queued = max_queued
        self._subscriptions: set[Subscription] = set()

    def subscribe(
        self, tenant_id: str, on_end: Callable[[EndReason], None] | None = None
    ) -> Subscription:
        """A new subscription to ``tenant_id``'s events from now on."""
        subscription = Subscription(tenant_id, self.max_queued, on_end)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription`` (its client went away)."""
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        """How many subscriptions are live."""
        return len(self._subscriptions)

    def publish(self, event: Event) -> None:
        """Offer ``event`` to its tenant's subscriptions, never waiting on one."""
        for subscription in list(self._subscriptions):
            if subscription.tenant_id == event.tenant_id and not subscription.offer(event):
                self._subscriptions.discard(subscription)

    def end_all(self, reason: EndReason) -> None:
        """End every subscription (the server is stopping), so streams finish."""
        for subscription in list(self._subscriptions):
            subscription.end(reason)
        self._subscriptions.clear()


class LiveFeed:
    """One client's events: visible to its principal, filtered, resumable after an id."""

    def __init__(
        self,
        fanout: Fanout,
        jobs: JobService,
        filters: EventFilter,
        on_end: Callable[[EndReason], None] | None = None,
    ) -> None:
        self.jobs = jobs
        self.filters = filters
        self._fanout = fanout
        self._subscription = fanout.subscribe(jobs.tenant_id, on_end)
        self._replay_cursor: int | None = None
        self._replay: deque[Event] = deque()
        self._replayed: set[int] = set()
        self._jobs: dict[int, Job | None] = {}

    def resume_after(self, last_event_id: int | None) -> None:
        """Replay the stored events after ``last_event_id`` before the live ones."""
        self._replay_cursor = last_event_id

    def close(self) -> None:
        """Leave the fan-out."""
        self._fanout.unsubscribe(self._subscription)

    async def next(self, max_wait: float | None = None) -> Event | None:
        """The next matching event, or ``None`` if none came within ``max_wait`` seconds;
        raises ``FeedEnded`` when the server ended the subscription."""
        loop = asyncio.get_running_loop()
        deadline = None if max_wait is None else loop.time() + max_wait
        while True:
            event = await self._replayed_event()
            if event is None:
                left = None if deadline is None else max(deadline - loop.time(), 0.0)
                event = await self._live_event(left)
                if event is None:
                    return None
            if await self.matches(event):
                return self.jobs.shown(event)

    async def _replayed_event(self) -> Event | None:
        while self._replay_cursor is not None and not self._replay:
            page = await _shielded(
                self.jobs.store.list_events(self.jobs.tenant_id, self._replay_cursor, PAGE)
            )
            if not page:
                self._replay_cursor = None
                return None
            self._replay.extend(page)
            self._replay_cursor = page[-1].id
        if not self._replay:
            return None
        event = self._replay.popleft()
        self._replayed.add(event.id)
        return event

    async def _live_event(self, max_wait: float | None) -> Event | None:
        while True:
            event = await self._subscription.get(max_wait)
            if event is None or event.id not in self._replayed:
                # Events the replay returned come first in the live queue: once past
                # them, nothing later can repeat one.
                self._replayed.clear()
                return event

    async def matches(self, event: Event) -> bool:
        """Whether ``event`` is for this client: visible to it and passing the filters."""
        filters = self.filters
        if filters.types is not None and event.type not in filters.types:
            return False
        if filters.job_id is not None and event.job_id != filters.job_id:
            return False
        if event.job_id is None:
            return self._matches_jobless(event)
        if self.jobs.assigned_to is None and not filters.needs_job():
            return True
        job = await self._job(event)
        return (
            job is not None
            and filters.queue in (None, job.queue)
            and filters.task in (None, job.task)
        )

    def _matches_jobless(self, event: Event) -> bool:
        # An agent sees only its jobs' events (as JobService.events_page).
        if self.jobs.assigned_to is not None or self.filters.task is not None:
            return False
        return self.filters.queue in (None, event.data.get("queue"))

    async def _job(self, event: Event) -> Job | None:
        assert event.job_id is not None  # noqa: S101 - checked by the caller
        if len(self._jobs) > JOB_CACHE:
            self._jobs.clear()
        if event.type == EventType.JOB_EDITED:  # its queue or assignee may have changed
            self._jobs.pop(event.job_id, None)
        if event.job_id not in self._jobs:
            try:
                self._jobs[event.job_id] = await _shielded(self.jobs.get(event.job_id))
            except NotFound:
                self._jobs[event.job_id] = None
        return self._jobs[event.job_id]


async def _shielded(query: Coroutine[Any, Any, T]) -> T:
    """Run a store query that a client leaving (a cancelled stream) does not interrupt:
    a query cancelled halfway can leave a pooled connection behind."""
    return await asyncio.shield(query)
