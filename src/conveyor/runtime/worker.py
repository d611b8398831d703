"""The worker: claims jobs in batches, runs them, heartbeats, writes results in batches.

One asyncio loop per worker process. Claims and completions go to the store in
batches (one transaction each); a handler's reports are buffered and written
before its result. Leases are extended by a heartbeat every few seconds, and
the same tick rescues jobs whose worker stopped heartbeating, so a killed
worker's jobs run again within ``lease_seconds + heartbeat_seconds``.

Waiting jobs (``scheduled``, ``retryable``) are promoted by a timer, not a poll:
it sleeps until the earliest one is due (at most ``poll_seconds``), promotes it,
and the promotion wakes the claim loop. Whatever may bring a due time closer (a
wake-up from the store, a retry this worker wrote) makes it look again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from conveyor.domain.errors import ConveyorError
from conveyor.domain.jobs import DEFAULT_TENANT, ErrorInfo, Job
from conveyor.domain.outcomes import Failed, Finish, Outcome, decide
from conveyor.domain.retry import Backoff
from conveyor.runtime.context import JobContext, Note, Progress, StoredFile, Update
from conveyor.runtime.executor import execute
from conveyor.runtime.observer import NoObserver, WorkerObserver
from conveyor.runtime.registry import RegisteredTask, TaskRegistry
from conveyor.runtime.turns import QueueTurns
from conveyor.store.protocol import Store, WorkerInfo

log = logging.getLogger("conveyor.worker")

URGENT_RECHECK = 0.05  # seconds between looks for urgent jobs while normal slots are full
BUSY_DUE_RECHECK = 0.05  # seconds between looks for new due times while claims keep coming
PROMOTE_CONTENDED = 0.005  # seconds to let another promoter commit jobs it holds
PROMOTE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker claims and runs jobs."""

    tenant_id: str = DEFAULT_TENANT
    queues: tuple[str, ...] = ()
    concurrency: int = 10
    reserved: int | None = None
    batch_size: int = 100
    lease_seconds: float = 10.0
    heartbeat_seconds: float = 2.0
    poll_seconds: float = 0.5
    drained_recheck_seconds: float = 0.05
    """While other queues keep the worker busy, how often it looks again at a queue that
    came back short (an idle worker looks again on a wake-up from the store or a poll)."""
    shutdown_grace: float = 30.0
    artifact_dir: Path = field(default_factory=lambda: Path("conveyor-data") / "artifacts")

    @property
    def reserved_slots(self) -> int:
        """Slots kept for priority-0 and immediate jobs (default: a quarter, at least 1)."""
        return self.reserved if self.reserved is not None else max(1, self.concurrency // 4)


@dataclass(slots=True)
class _Running:
    job: Job
    ctx: JobContext
    urgent_slot: bool
    task: asyncio.Task[None] | None = None


class Worker:
    """Runs the registered tasks' jobs from a store until told to stop."""

    def __init__(
        self,
        store: Store,
        registry: TaskRegistry,
        settings: WorkerSettings,
        observer: WorkerObserver | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.observer: WorkerObserver = observer or NoObserver()
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.queues = settings.queues or tuple(registry.queues()) or ("default",)
        self._running: dict[int, _Running] = {}
        self._busy = {False: 0, True: 0}  # running jobs by kind of slot (urgent or not)
        self._updates: list[Update] = []
        self._finishes: list[Finish] = []
        self._finished_queues: set[str] = set()  # of the finishes not written yet
        self._queue_freed = asyncio.Event()  # results written: a capped queue has room
        self._flush_needed = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._due_changed = asyncio.Event()
        self._due_poked = 0.0
        self._pool = ThreadPoolExecutor(
            max_workers=settings.concurrency + settings.reserved_slots,
            thread_name_prefix="conveyor-job",
        )
        self._turns = QueueTurns(self.queues, settings.drained_recheck_seconds)
        self._closing = False
        self._started_at: datetime = store.clock()
        self.processed = 0

    # -- slots ----------------------------------------------------------------

    def _free_normal(self) -> int:
        return self.settings.concurrency - self._busy[False]

    def _free_reserved(self) -> int:
        return self.settings.reserved_slots - self._busy[True]

    # -- the main loop --------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then drain gracefully and release what is left."""
        self._started_at = self.store.clock()
        await self.store.register_worker(self._info())
        log.info("worker %s started on queues %s", self.id, ",".join(self.queues))
        loops = [
            asyncio.create_task(self._forever(self._heartbeat, self.settings.heartbeat_seconds)),
            asyncio.create_task(self._promote_when_due()),
        ]
        flusher = asyncio.create_task(self._flush_loop())
        try:
            await self._claim_loop(stop)
            await self._drain()
        finally:
            for loop_task in loops:
                loop_task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            # Never cancel a flush in flight: its commit may land after the cancel,
            # and the results would be written twice (the second time refused).
            self._closing = True
            self._flush_needed.set()
            await asyncio.gather(flusher, return_exceptions=True)
            await self._flush()
            await self.store.unregister_worker(self.id)
            self._pool.shutdown(wait=False, cancel_futures=True)
            log.info("worker %s stopped after %d jobs", self.id, self.processed)

    def _info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            tenant_id=self.settings.tenant_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            concurrency=self.settings.concurrency,
            started_at=self._started_at,
            last_seen_at=self.store.clock(),
        )

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        woken = False
        while not stop.is_set():
            # Cleared before claiming, so a job that ends during the claim still wakes us.
            self._slot_freed.clear()
            self._queue_freed.clear()
            try:
                claimed = await self._claim_round()
            except ConveyorError as exc:
                log.warning("claim failed, retrying: %s", exc)
                await _wait_any(stop.wait(), asyncio.sleep(self.settings.poll_seconds))
                continue
            if woken:
                # What woke us may have been a job due sooner: the due timer looks
                # again, after the claim, so that its query never delays a pickup.
                self._poke_due_timer()
                woken = False
            if claimed or self._slot_freed.is_set():
                self._poke_due_timer(busy=True)
                continue
            waits: list[Awaitable[object]] = [stop.wait()]
            if self._free_normal() > 0:
                waits.append(self._wait_for_work(self.settings.poll_seconds))
                waits.append(self._queue_freed.wait())
            else:
                # Normal slots full: wake when one frees, and look for urgent jobs
                # (reserved slots) when new work arrives or every URGENT_RECHECK s.
                waits.append(self._slot_freed.wait())
                if self._free_reserved() > 0:
                    waits.append(self._wait_for_work(URGENT_RECHECK))
            await _wait_any(*waits)
            woken = True

    async def _wait_for_work(self, max_wait: float) -> None:
        await self.store.wait_for_work(max_wait)
        self._turns.woken(time.monotonic())  # new work or a poll: look at every queue

    async def _claim_round(self) -> int:
        claimed = 0
        for queue in self._turns.order(time.monotonic()):
            free = self._free_normal()
            urgent = free <= 0
            limit = min(self.settings.batch_size, free if not urgent else self._free_reserved())
            if limit <= 0:
                break
            sent = time.monotonic()
            jobs = await self.store.claim(
                self.settings.tenant_id,
                queue,
                self.id,
                limit,
                self.settings.lease_seconds,
                urgent_only=urgent,
            )
            answered = time.monotonic()
            self.observer.claimed(queue, len(jobs), answered - sent)
            self._turns.claimed(queue, limit, len(jobs), sent, answered, urgent)
            for job in jobs:
                self._start(job, urgent)
            if jobs:
                # Let the jobs just started take their first step before anything else
                # is sent: each starts at once, and an async job that never waits even
                # frees its slot, which the next claim can then fill.
                await asyncio.sleep(0)
            claimed += len(jobs)
        return claimed

    def _start(self, job: Job, urgent_slot: bool) -> None:
        ctx = JobContext(job, self.settings.artifact_dir, self._report)
        running = _Running(job, ctx, urgent_slot)
        self._running[job.id] = running
        self._busy[urgent_slot] += 1
        running.task = asyncio.create_task(self._run_job(running))

    def _report(self, update: Update) -> None:
        # Into the list of the moment: a flush swaps it for a new one while jobs run.
        self._updates.append(update)

    async def _run_job(self, running: _Running) -> None:
        job = running.job
        task = self.registry.get(job.task)
        began = time.perf_counter()
        try:
            outcome = await self._outcome(task, running)
            finish = decide(
                outcome,
                job_id=job.id,
                attempt=job.attempt,
                max_attempts=job.max_attempts,
                backoff=task.settings.backoff if task else Backoff(),
                now=self.store.clock(),
            )
            self._finishes.append(finish)
            self._finished_queues.add(job.queue)
            self._flush_needed.set()
            self.processed += 1
            self.observer.ran(job.task, finish.outcome, time.perf_counter() - began)
        finally:
            self._running.pop(job.id, None)
            self._busy[running.urgent_slot] -= 1
            self._slot_freed.set()

    async def _outcome(self, task: RegisteredTask | None, running: _Running) -> Outcome:
        if task is None:
            message = f"no handler for task {running.job.task!r} in worker {self.id}"
            return Failed(ErrorInfo("UnknownTask", message))
        return await execute(task, running.job, running.ctx, self._pool)

    # -- background loops -------------------------------------------------------

    async def _forever(self, step: Callable[[], Awaitable[None]], every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await step()
            except ConveyorError as exc:
                log.warning("%s failed, will retry: %s", step.__name__, exc)
            except Exception:
                log.exception("%s failed, will retry", step.__name__)

    async def _heartbeat(self) -> None:
        held = [(job_id, r.job.attempt) for job_id, r in self._running.items()]
        still_held = await self.store.heartbeat(self.id, held, self.settings.lease_seconds)
        for job_id, _ in held:
            running = self._running.get(job_id)
            if job_id not in still_held and running and not running.ctx.cancelled:
                log.warning("job %s was cancelled or lost its lease", job_id)
                running.ctx.cancel("cancelled or lease lost")
        await self.store.register_worker(self._info())
        rescued = await self.store.rescue_expired()
        if rescued:
            log.warning("rescued %d jobs whose worker stopped heartbeating", len(rescued))

    def _poke_due_timer(self, busy: bool = False) -> None:
        """Make the due timer look again; while busy, at most every BUSY_DUE_RECHECK s."""
        now = asyncio.get_running_loop().time()
        if not busy or now - self._due_poked >= BUSY_DUE_RECHECK:
            self._due_poked = now
            self._due_changed.set()

    async def _promote_when_due(self) -> None:
        """Promote waiting jobs as they fall due: sleep until the earliest is due (at
        most ``poll_seconds``, or until poked), promote, look again."""
        while True:
            self._due_changed.clear()
            pause = self.settings.poll_seconds
            try:
                pause = await self._promote_due()
            except ConveyorError as exc:
                log.warning("promoting due jobs failed, will retry: %s", exc)
            except Exception:
                log.exception("promoting due jobs failed, will retry")
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await self._due_changed.wait()

    async def _promote_due(self) -> float:
        """Promote what is due now; return how long to sleep before looking again."""
        due = await self.store.next_due_at()
        now = self.store.clock()
        if due is None or due > now:
            until = self.settings.poll_seconds if due is None else (due - now).total_seconds()
            return min(until, self.settings.poll_seconds)
        if await self.store.promote_due(PROMOTE_BATCH):
            return 0.0  # look again at once: more may be due
        return PROMOTE_CONTENDED  # another promoter holds them until it commits

    async def _flush_loop(self) -> None:
        while not self._closing:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._flush_needed.wait()
            self._flush_needed.clear()
            try:
                await self._flush()
            except ConveyorError as exc:
                log.warning("writing results failed, will retry: %s", exc)
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        updates, self._updates = self._updates, []
        finishes, self._finishes = self._finishes, []
        queues, self._finished_queues = self._finished_queues, set()
        try:
            await self._write_updates(updates)
            accepted = await self.store.finish(finishes)
        except BaseException:
            self._updates[:0] = updates
            self._finishes[:0] = finishes
            self._finished_queues |= queues
            raise
        if queues:
            # The jobs written no longer count against their queue's concurrency
            # limit: look at those queues again, even drained (they may be capped).
            written = time.monotonic()
            for queue in queues:
                self._turns.freed(queue, written)
            self._queue_freed.set()
        if any(item.run_at is not None for item in finishes):
            self._due_changed.set()  # a retry or snooze: its due time may be the earliest
        for item, ok in zip(finishes, accepted, strict=True):
            if not ok:
                log.warning(
                    "result of job %s attempt %s refused: lease lost", item.job_id, item.attempt
                )

    async def _write_updates(self, updates: list[Update]) -> None:
        latest: dict[tuple[int, int], Progress] = {}
        for update in updates:
            if isinstance(update, Progress):
                latest[(update.job_id, update.attempt)] = update
            elif isinstance(update, Note):
                await self.store.add_note(update.job_id, update.attempt, update.text)
            elif isinstance(update, StoredFile):
                await self.store.add_artifact(
                    update.job_id,
                    update.attempt,
                    update.name,
                    update.size,
                    update.sha256,
                    update.path,
                )
        for p in latest.values():
            await self.store.record_progress(p.job_id, p.attempt, p.fraction, p.message)

    # -- shutdown -----------------------------------------------------------------

    async def _drain(self) -> None:
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            log.info(
                "waiting up to %s s for %d running jobs", self.settings.shutdown_grace, len(tasks)
            )
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
        await self._release()

    async def _release(self) -> None:
        """Hand back jobs still running after the grace period, for another worker."""
        left = list(self._running.values())
        if not left:
            return
        for running in left:
            running.ctx.cancel("worker shutting down")
            if running.task is not None:
                running.task.cancel()
        held = [(r.job.id, r.job.attempt) for r in left]
        await self.store.heartbeat(self.id, held, -1.0)  # expire our own leases now
        await self.store.rescue_expired()
        log.warning("released %d unfinished jobs", len(left))


async def _wait_any(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
