"""Random sequences of store operations keep every job and its whole history.

A hypothesis state machine drives a real SQLiteStore (a temp file, ``synchronous
= OFF`` for speed) through enqueues, claims, completions, failures, discards,
cancels, retries, lease expiries and promotions, keeping a small model of what
each job must look like. After every step the store must agree with the model.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from conveyor.domain.errors import IllegalTransition
from conveyor.domain.jobs import ErrorInfo, Job, JobFilter, new_job, utcnow
from conveyor.domain.lifecycle import ACTIVE, TERMINAL, JobState
from conveyor.domain.outcomes import Completed, Discarded, Failed, Outcome, decide
from conveyor.domain.retry import Backoff
from conveyor.store.sqlite.store import SQLiteStore

S = JobState
TENANT = "default"
WORKER = "worker-1"
LEASE = 30.0
BOOM = ErrorInfo("RuntimeError", "boom")
BACKOFF = Backoff(base=5, factor=2, cap=60, jitter=0)


@dataclass
class Expected:
    """What the model says one job must look like."""

    state: JobState
    attempt: int
    max_attempts: int
    run_at: datetime
    lease_expires_at: datetime | None = None
    ended_attempts: int = 0
    changes: int = 1  # the enqueue


class JobLifecycle(RuleBasedStateMachine):
    """The store against a model, one random operation at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="conveyor-props-"))
        self.now = utcnow().replace(microsecond=0)
        self.runner = asyncio.Runner()
        self.store = SQLiteStore(
            self.folder / "conveyor.db", synchronous="OFF", clock=lambda: self.now
        )
        self.runner.run(self.store.open())
        self.runner.run(self.store.migrate())
        self.model: dict[int, Expected] = {}

    def teardown(self) -> None:
        try:
            self.runner.run(self.store.close())
        finally:
            self.runner.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------

    def _ids_in(self, *states: JobState) -> list[int]:
        return sorted(i for i, e in self.model.items() if e.state in states)

    def _pick(self, ids: list[int], index: int) -> int:
        return ids[index % len(ids)]

    def _job(self, job_id: int) -> Job:
        return self.runner.run(self.store.get_job(TENANT, job_id))

    def _finish(self, job_id: int, outcome: Outcome) -> None:
        job = self._job(job_id)
        finish = decide(
            outcome,
            job_id=job.id,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            backoff=BACKOFF,
            now=self.now,
        )
        assert self.runner.run(self.store.finish([finish])) == [True]
        expected = self.model[job_id]
        expected.state = finish.state
        expected.lease_expires_at = None
        expected.ended_attempts += 1
        expected.changes += 1
        if finish.run_at is not None:
            expected.run_at = finish.run_at

    # -- rules -------------------------------------------------------------------

    @initialize(count=st.integers(min_value=1, max_value=4))
    def start_with_some_jobs(self, count: int) -> None:
        for _ in range(count):
            self.enqueue(max_attempts=2, delay=None)

    @rule(
        max_attempts=st.integers(min_value=1, max_value=3),
        delay=st.sampled_from([None, None, 0, 10, 45]),
    )
    def enqueue(self, max_attempts: int, delay: int | None) -> None:
        request = new_job("prop.task", max_attempts=max_attempts, delay=delay, now=self.now)
        (job,) = self.runner.run(self.store.enqueue([request]))
        assert job.id not in self.model
        self.model[job.id] = Expected(
            state=request.initial_state(self.now),
            attempt=0,
            max_attempts=max_attempts,
            run_at=request.run_at,
        )

    @rule(limit=st.integers(min_value=1, max_value=3))
    def claim(self, limit: int) -> None:
        available = sorted(
            self._ids_in(S.AVAILABLE), key=lambda i: (self.model[i].run_at, i)
        )  # every job has the default priority
        claimed = self.runner.run(self.store.claim(TENANT, "default", WORKER, limit, LEASE))
        assert [job.id for job in claimed] == available[:limit]
        for job in claimed:
            expected = self.model[job.id]
            expected.state = S.RUNNING
            expected.attempt += 1
            expected.lease_expires_at = self.now + timedelta(seconds=LEASE)
            expected.changes += 1
            assert job.attempt == expected.attempt

    @precondition(lambda self: self._ids_in(S.RUNNING))
    @rule(index=st.integers(min_value=0, max_value=100))
    def complete(self, index: int) -> None:
        self._finish(self._pick(self._ids_in(S.RUNNING), index), Completed({"ok": True}))

    @precondition(lambda self: self._ids_in(S.RUNNING))
    @rule(
        index=st.integers(min_value=0, max_value=100),
        retry_in=st.sampled_from([None, 0, 20]),
    )
    def fail(self, index: int, retry_in: int | None) -> None:
        self._finish(self._pick(self._ids_in(S.RUNNING), index), Failed(BOOM, retry_in))

    @precondition(lambda self: self._ids_in(S.RUNNING))
    @rule(index=st.integers(min_value=0, max_value=100))
    def discard(self, index: int) -> None:
        self._finish(self._pick(self._ids_in(S.RUNNING), index), Discarded(BOOM))

    @precondition(lambda self: [i for i, e in self.model.items() if e.attempt > 0])
    @rule(index=st.integers(min_value=0, max_value=100))
    def finish_a_stale_attempt(self, index: int) -> None:
        """A worker finishing an attempt that is over (or superseded) is always refused."""
        ran = sorted(i for i, e in self.model.items() if e.attempt > 0)
        job_id = self._pick(ran, index)
        expected = self.model[job_id]
        stale = expected.attempt - 1 if expected.state is S.RUNNING else expected.attempt
        if stale < 1:
            return
        finish = decide(
            Completed("stale"),
            job_id=job_id,
            attempt=stale,
            max_attempts=expected.max_attempts,
            backoff=BACKOFF,
            now=self.now,
        )
        assert self.runner.run(self.store.finish([finish])) == [False]

    @precondition(lambda self: self.model)
    @rule(index=st.integers(min_value=0, max_value=100), legal=st.booleans())
    def cancel(self, index: int, legal: bool) -> None:
        """Cancel a job that has not finished, or be refused for one that has."""
        pool = self._ids_in(*ACTIVE) if legal else self._ids_in(*TERMINAL)
        if not pool:
            return
        job_id = self._pick(pool, index)
        expected = self.model[job_id]
        if not legal:
            with pytest.raises(IllegalTransition):
                self.runner.run(self.store.cancel_job(TENANT, job_id, "prop"))
            return
        self.runner.run(self.store.cancel_job(TENANT, job_id, "prop"))
        if expected.state is S.RUNNING:
            expected.ended_attempts += 1
        expected.state = S.CANCELLED
        expected.lease_expires_at = None
        expected.changes += 1

    @precondition(lambda self: self.model)
    @rule(index=st.integers(min_value=0, max_value=100), legal=st.booleans())
    def retry(self, index: int, legal: bool) -> None:
        """Retry a finished job, or be refused for one that has not finished."""
        pool = self._ids_in(*TERMINAL) if legal else self._ids_in(*ACTIVE)
        if not pool:
            return
        job_id = self._pick(pool, index)
        expected = self.model[job_id]
        if not legal:
            with pytest.raises(IllegalTransition):
                self.runner.run(self.store.retry_job(TENANT, job_id))
            return
        job = self.runner.run(self.store.retry_job(TENANT, job_id))
        assert job.max_attempts > job.attempt
        expected.state = S.AVAILABLE
        expected.max_attempts = job.max_attempts
        expected.run_at = job.run_at
        expected.changes += 1

    @rule(seconds=st.sampled_from([1, 10, 29, 31, 60]))
    def heartbeat_then_let_time_pass_and_rescue(self, seconds: int) -> None:
        running = self._ids_in(S.RUNNING)
        held = [(i, self.model[i].attempt) for i in running]
        if held and seconds % 2:  # sometimes the worker is alive, sometimes it died
            assert self.runner.run(self.store.heartbeat(WORKER, held, LEASE)) == set(running)
            for i in running:
                self.model[i].lease_expires_at = self.now + timedelta(seconds=LEASE)
        self.now += timedelta(seconds=seconds)
        expired = sorted(
            i
            for i in running
            if (lease := self.model[i].lease_expires_at) is not None and lease < self.now
        )
        rescued = self.runner.run(self.store.rescue_expired())
        assert sorted(rescued) == expired
        for i in expired:
            expected = self.model[i]
            left = expected.attempt < expected.max_attempts
            expected.state = S.AVAILABLE if left else S.DISCARDED
            expected.lease_expires_at = None
            expected.ended_attempts += 1
            expected.changes += 1

    @rule()
    def promote(self) -> None:
        due = [
            i for i in self._ids_in(S.SCHEDULED, S.RETRYABLE) if self.model[i].run_at <= self.now
        ]
        assert self.runner.run(self.store.promote_due()) == len(due)
        for i in due:
            self.model[i].state = S.AVAILABLE
            self.model[i].changes += 1

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        """Read everything once per step, then check each property on it."""
        jobs = self.runner.run(self.store.list_jobs(TENANT, JobFilter(limit=1000)))
        by_id = {job.id: job for job in jobs}
        self._no_job_is_lost_and_each_matches_the_model(by_id)
        for job in jobs:
            self._attempts_never_exceed_the_maximum(job)
            self._a_job_is_running_exactly_when_it_holds_a_lease(job)
            self._every_ended_attempt_has_one_history_row(job)
        self._every_state_change_has_its_event()

    def _no_job_is_lost_and_each_matches_the_model(self, jobs: dict[int, Job]) -> None:
        assert set(jobs) == set(self.model)
        for job_id, job in jobs.items():
            expected = self.model[job_id]
            assert job.state in set(JobState)
            assert job.state is expected.state, job_id
            assert job.attempt == expected.attempt, job_id
            assert job.max_attempts == expected.max_attempts, job_id
            assert job.lease_expires_at == expected.lease_expires_at, job_id
            if job.state in (S.SCHEDULED, S.RETRYABLE):
                assert job.run_at == expected.run_at, job_id

    def _attempts_never_exceed_the_maximum(self, job: Job) -> None:
        assert 0 <= job.attempt <= job.max_attempts, job

    def _a_job_is_running_exactly_when_it_holds_a_lease(self, job: Job) -> None:
        assert (job.state is S.RUNNING) == (job.lease_expires_at is not None), job
        if job.state is S.RUNNING:
            assert job.worker_id == WORKER

    def _every_ended_attempt_has_one_history_row(self, job: Job) -> None:
        attempts = self.runner.run(self.store.list_attempts(TENANT, job.id))
        ended = job.attempt - 1 if job.state is S.RUNNING else job.attempt
        assert [a.attempt for a in attempts] == list(range(1, ended + 1)), job.id
        assert len(attempts) == self.model[job.id].ended_attempts
        assert all(a.finished_at is not None and a.outcome for a in attempts)

    def _every_state_change_has_its_event(self) -> None:
        events = self.runner.run(self.store.list_events(TENANT, 0, 100_000))
        per_job: dict[int, int] = {}
        for event in events:
            assert event.job_id is not None
            per_job[event.job_id] = per_job.get(event.job_id, 0) + 1
        assert per_job == {i: e.changes for i, e in self.model.items()}
        ids = [event.id for event in events]
        assert ids == sorted(set(ids))


JobLifecycle.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJobLifecycleAgainstAModel = JobLifecycle.TestCase
