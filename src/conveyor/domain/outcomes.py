"""What a handler's run came to, and the pure decision of what to write for it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from conveyor.domain.events import ARRIVAL_EVENT, EventType
from conveyor.domain.jobs import ErrorInfo
from conveyor.domain.lifecycle import Action, JobState, transition
from conveyor.domain.retry import Backoff


class Retry(Exception):
    """Raise in a handler to try the job again later (counts as an attempt)."""

    def __init__(self, after: float | timedelta | None = None, reason: str = "retry requested"):
        super().__init__(reason)
        self.after = after.total_seconds() if isinstance(after, timedelta) else after
        self.reason = reason


class Discard(Exception):
    """Raise in a handler to stop retrying: the job goes to the dead-letter set."""

    def __init__(self, reason: str = "discarded by handler"):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Completed:
    """The handler returned; ``result`` is stored as JSON."""

    result: Any = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The handler raised or timed out. ``retry_in`` overrides the backoff."""

    error: ErrorInfo
    retry_in: float | None = None


@dataclass(frozen=True, slots=True)
class Discarded:
    """The handler asked not to retry."""

    error: ErrorInfo


Outcome = Completed | Failed | Discarded


@dataclass(frozen=True, slots=True)
class Finish:
    """The write that ends one attempt: the new state and what to record."""

    job_id: int
    attempt: int
    state: JobState
    event: EventType
    run_at: datetime | None = None
    result: Any = None
    error: ErrorInfo | None = None

    @property
    def outcome(self) -> str:
        """The attempt's outcome as recorded in its history row."""
        return _OUTCOMES[self.state]

    @property
    def plain(self) -> bool:
        """Whether it completes its job with nothing to record but the fact (most
        finishes: the stores write these from a template instead of encoding them)."""
        return (
            self.state is JobState.COMPLETED
            and self.result is None
            and self.error is None
            and self.run_at is None
        )


_OUTCOMES = {
    JobState.COMPLETED: "completed",
    JobState.RETRYABLE: "failed",
    JobState.DISCARDED: "discarded",
}


def decide(
    outcome: Outcome,
    *,
    job_id: int,
    attempt: int,
    max_attempts: int,
    backoff: Backoff,
    now: datetime,
    rng: random.Random | None = None,
) -> Finish:
    """Turn an attempt's outcome into the state to write; nothing is written here."""
    if isinstance(outcome, Completed):
        state = transition(Action.COMPLETE, JobState.RUNNING, JobState.COMPLETED, job_id)
        return Finish(job_id, attempt, state, ARRIVAL_EVENT[state], result=outcome.result)
    if isinstance(outcome, Discarded) or attempt >= max_attempts:
        state = transition(Action.DISCARD, JobState.RUNNING, JobState.DISCARDED, job_id)
        return Finish(job_id, attempt, state, ARRIVAL_EVENT[state], error=outcome.error)
    delay = outcome.retry_in if outcome.retry_in is not None else backoff.delay(attempt, rng)
    state = transition(Action.FAIL, JobState.RUNNING, JobState.RETRYABLE, job_id)
    return Finish(
        job_id,
        attempt,
        state,
        ARRIVAL_EVENT[state],
        run_at=now + timedelta(seconds=max(delay, 0.0)),
        error=outcome.error,
    )
