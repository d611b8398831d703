"""The Notifier: sends each tenant's events to its webhook Subscriptions, on the node
that leads (a lock of its own, apart from the scheduler's).

Each round it (1) reads every enabled Subscription's events after its durable cursor
(``Store.list_events``: committed events in an order where a late commit is never
skipped) and, in one transaction, makes a delivery of each matching event and moves
the cursor to the last event read; then (2) starts the due deliveries in the
background: at most ``per_webhook`` at once per Subscription and ``concurrency`` in
all, each with a timeout, so a slow or dead receiver holds up only its own. A
delivery waits while an earlier one of the same job is pending (in order per job).
A failed attempt is retried on the schedule of :func:`~conveyor.domain.webhooks.next_attempt_at`;
after ``disable_after`` deliveries failed in a row the Subscription is disabled and a
``webhook.disabled`` event appended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from conveyor.domain.errors import NotFound
from conveyor.domain.events import Event
from conveyor.domain.jobs import Job
from conveyor.domain.webhooks import (
    AttemptResult,
    Delivery,
    Subscription,
    matches,
    next_attempt_at,
    request_headers,
    should_disable,
)
from conveyor.loops.base import Loop
from conveyor.loops.inflight import Inflight
from conveyor.net.webhook_sender import Sender
from conveyor.store.leadership import Leadership
from conveyor.store.protocol import Store
from conveyor.store.webhooks_protocol import WebhookStore

log = logging.getLogger("conveyor.notifier")

EVENT_BATCH = 200


@dataclass(frozen=True, slots=True)
class NotifierLimits:
    """How hard the notifier works: concurrency, timeouts, when to give up on a receiver."""

    concurrency: int = 16
    per_webhook: int = 2
    timeout: float = 10.0
    disable_after: int = 10
    """Deliveries failed in a row (each after a day of retries) that disable a
    Subscription; 0: never."""


class Notifier(Loop):
    """Turns events into webhook deliveries and sends them, while this node leads."""

    name = "notifier"

    def __init__(
        self,
        store: Store,
        webhooks: WebhookStore,
        leadership: Leadership,
        sender: Sender,
        clock: Callable[[], datetime],
        interval: float = 1.0,
        limits: NotifierLimits | None = None,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(interval)
        self.store = store
        self.webhooks = webhooks
        self.leadership = leadership
        self.sender = sender
        self.clock = clock
        self.limits = limits or NotifierLimits()
        self.wall = wall
        """Signature timestamps: real time, whatever ``clock`` says (receivers check it)."""
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.leading = False
        self._inflight = Inflight()
        self._per_webhook: dict[int, int] = {}
        self._refills: set[asyncio.Task[None]] = set()
        self._current: dict[int, Subscription] = {}
        """The enabled Subscriptions as the latest round read them (refills use these,
        so a change or a disabling is seen within a round)."""

    async def run_once(self) -> int:
        """Make deliveries of new events and start the due ones (if this node leads);
        return how many of both."""
        self.leading = await self.leadership.hold()
        if not self.leading:
            self._current = {}
            return 0
        subscriptions = await self.webhooks.enabled()
        self._current = {webhook.id: webhook for webhook in subscriptions}
        made = 0
        for webhook in subscriptions:
            made += await self.collect(webhook)
        started = 0
        for webhook in subscriptions:
            started += await self.dispatch(webhook)
        return made + started

    async def collect(self, webhook: Subscription) -> int:
        """Make a delivery of each new event ``webhook`` wants; return how many."""
        made = 0
        # Jobs read for queue and task filters; None: the Subscription has neither.
        jobs: dict[int, Job | None] | None = (
            {} if webhook.spec.queues or webhook.spec.tasks else None
        )
        while True:
            events = await self.store.list_events(webhook.tenant_id, webhook.cursor, EVENT_BATCH)
            if not events:
                return made
            wanted = [e for e in events if matches(webhook.spec, await self._routed(e, jobs))]
            cursor = events[-1].id
            if not await self.webhooks.record_events(webhook, wanted, cursor, self.clock()):
                return made  # another node moved the cursor on
            made += len(wanted)
            webhook = replace(webhook, cursor=cursor)
            if len(events) < EVENT_BATCH:
                return made

    async def _routed(self, event: Event, jobs: dict[int, Job | None] | None) -> Event:
        """``event`` as a queue or task filter sees it: events that do not name their
        job's queue and task (``job.started``, ``job.succeeded``...) get them from the
        job, read once per job into ``jobs`` (``None``: no filter needs them)."""
        if jobs is None or event.job_id is None:
            return event
        if "queue" in event.data and "task" in event.data:
            return event
        if event.job_id not in jobs:
            try:
                jobs[event.job_id] = await self.store.get_job(event.tenant_id, event.job_id)
            except NotFound:
                jobs[event.job_id] = None  # pruned since: matches no queue or task
        job = jobs[event.job_id]
        route = {"queue": job.queue, "task": job.task} if job is not None else {}
        return replace(event, data={**route, **event.data})

    async def dispatch(self, webhook: Subscription) -> int:
        """Start ``webhook``'s due deliveries as far as the limits allow; return how many.
        Nothing starts once the notifier is stopping or has lost the lead."""
        if self._stop.is_set() or not self.leading or self._room(webhook.id) <= 0:
            return 0
        fresh = await self._inflight.due(
            lambda: self.webhooks.due(webhook.id, self.clock(), self.limits.per_webhook)
        )
        if self._stop.is_set():  # stop() came during the read
            return 0
        # Room is counted again: deliveries may have started or ended meanwhile.
        fresh = fresh[: self._room(webhook.id)]
        for delivery in fresh:
            self._start(webhook, delivery)
        return len(fresh)

    def _room(self, webhook_id: int) -> int:
        busy = self._per_webhook.get(webhook_id, 0)
        return min(self.limits.per_webhook - busy, self.limits.concurrency - len(self._inflight))

    def _start(self, webhook: Subscription, delivery: Delivery) -> None:
        self._per_webhook[webhook.id] = self._per_webhook.get(webhook.id, 0) + 1
        self._inflight.start(
            delivery.id,
            self._send(webhook, delivery),
            lambda: self._finished(webhook.id),
            f"webhook-{delivery.id}",
        )

    def _finished(self, webhook_id: int) -> None:
        """A slot is free: fill it with the Subscription's next due delivery at once (one
        query), rather than after a whole round."""
        self._per_webhook[webhook_id] -= 1
        if not self._per_webhook[webhook_id]:
            del self._per_webhook[webhook_id]
        webhook = self._current.get(webhook_id)
        if webhook is None or not self.leading or self._stop.is_set():
            return
        refill = asyncio.create_task(self._refill(webhook), name=f"webhook-refill-{webhook_id}")
        self._refills.add(refill)
        refill.add_done_callback(self._refills.discard)

    async def _refill(self, webhook: Subscription) -> None:
        try:
            await self.dispatch(webhook)
        except Exception as exc:
            log.warning("webhook %d: cannot read due deliveries (%s)", webhook.id, exc)
            self.wake()

    async def _send(self, webhook: Subscription, delivery: Delivery) -> None:
        try:
            await self.attempt(webhook, delivery)
        except Exception:
            log.exception("webhook %d: delivery %d could not be recorded", webhook.id, delivery.id)

    async def attempt(self, webhook: Subscription, delivery: Delivery) -> AttemptResult:
        """Send one delivery now and record the outcome (and disable after too many
        failures in a row)."""
        signing = webhook.signing_secrets(self.clock())
        headers = request_headers(signing, delivery.message_id, int(self.wall()), delivery.body)
        result = await self.sender(webhook.spec.url, headers, delivery.body, self.limits.timeout)
        now = self.clock()
        retry_at = None
        if not result.ok:
            retry_at = next_attempt_at(delivery.attempts + 1, delivery.window_start, now, self.rng)
            log.info(
                "webhook %d: delivery %d attempt %d failed (%s)",
                webhook.id,
                delivery.id,
                delivery.attempts + 1,
                result.error or f"status {result.status_code}",
            )
        failures = await self.webhooks.record_attempt(delivery, result, retry_at, now)
        if failures is not None and should_disable(failures, self.limits.disable_after):
            await self._disable(webhook, failures, now)
        return result

    async def _disable(self, webhook: Subscription, failures: int, now: datetime) -> None:
        reason = f"{failures} deliveries in a row failed"
        # No URL: hook URLs often carry a token, and members read the tenant's events.
        data = {"webhook_id": webhook.id, "reason": reason}
        self._current.pop(webhook.id, None)
        if await self.webhooks.disable(webhook.id, reason, json.dumps(data), now):
            log.warning("webhook %d disabled: %s", webhook.id, reason)

    async def drain(self) -> None:
        """Wait for the deliveries in flight and the ones they start (tests; shutdown)."""
        await self._inflight.drain(also=lambda: tuple(self._refills))

    async def stop(self) -> None:
        """Stop looping, let the deliveries in flight finish (each has a timeout), and
        give the lead up so another node takes over at once."""
        await super().stop()
        await self.drain()
        await self.sender.close()
        await self.leadership.release()

    async def seconds_to_wait(self) -> float:
        """Until the earliest due retry, at most ``interval`` (new events are looked for
        every ``interval``)."""
        if not self.leading:
            return self.interval
        upcoming = await self.webhooks.next_attempt_at()
        if upcoming is None:
            return self.interval
        left = (upcoming - self.clock()).total_seconds()
        # Due already: in flight, or waiting behind one that is; a finished delivery wakes us.
        return self.interval if left <= 0 else min(self.interval, left)
