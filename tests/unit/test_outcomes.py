"""decide(): an attempt's outcome becomes the write to make, with no database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.events import EventType
from conveyor.domain.jobs import ErrorInfo
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import (
    Completed,
    Discard,
    Discarded,
    Failed,
    Finish,
    Retry,
    decide,
)
from conveyor.domain.retry import Backoff

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
BOOM = ErrorInfo("RuntimeError", "boom", "Traceback ...")
STEADY = Backoff(base=10, factor=3, cap=1000, jitter=0)  # 10, 30, 90, 270 ...


def _decide(outcome: Completed | Failed | Discarded, attempt: int, max_attempts: int) -> Finish:
    return decide(
        outcome,
        job_id=11,
        attempt=attempt,
        max_attempts=max_attempts,
        backoff=STEADY,
        now=NOW,
    )


def test_a_completed_attempt_completes_the_job_with_its_result() -> None:
    finish = _decide(Completed({"rows": 3}), attempt=1, max_attempts=3)
    assert finish == Finish(
        job_id=11,
        attempt=1,
        state=JobState.COMPLETED,
        event=EventType.JOB_SUCCEEDED,
        result={"rows": 3},
    )
    assert finish.outcome == "completed"


def test_a_completed_last_attempt_still_completes() -> None:
    finish = _decide(Completed(), attempt=3, max_attempts=3)
    assert finish.state is JobState.COMPLETED
    assert finish.result is None


@pytest.mark.parametrize(("attempt", "wait"), [(1, 10), (2, 30), (3, 90)])
def test_a_failure_with_attempts_left_is_retried_after_the_backoff(
    attempt: int, wait: float
) -> None:
    finish = _decide(Failed(BOOM), attempt=attempt, max_attempts=4)
    assert finish.state is JobState.RETRYABLE
    assert finish.event is EventType.JOB_RETRYING
    assert finish.run_at == NOW + timedelta(seconds=wait)
    assert finish.error == BOOM
    assert finish.result is None
    assert finish.outcome == "failed"


@pytest.mark.parametrize(("attempt", "max_attempts"), [(1, 1), (3, 3), (4, 3)])
def test_a_failure_with_no_attempts_left_discards_the_job(attempt: int, max_attempts: int) -> None:
    finish = _decide(Failed(BOOM), attempt=attempt, max_attempts=max_attempts)
    assert finish.state is JobState.DISCARDED
    assert finish.event is EventType.JOB_DISCARDED
    assert finish.run_at is None
    assert finish.error == BOOM
    assert finish.outcome == "discarded"


def test_a_discard_ends_the_job_even_with_attempts_left() -> None:
    finish = _decide(Discarded(BOOM), attempt=1, max_attempts=10)
    assert finish.state is JobState.DISCARDED
    assert finish.event is EventType.JOB_DISCARDED
    assert finish.error == BOOM
    assert finish.run_at is None


def test_retry_in_overrides_the_backoff() -> None:
    finish = _decide(Failed(BOOM, retry_in=2.5), attempt=3, max_attempts=5)
    assert finish.state is JobState.RETRYABLE
    assert finish.run_at == NOW + timedelta(seconds=2.5)


def test_retry_in_zero_retries_at_once() -> None:
    assert _decide(Failed(BOOM, retry_in=0), attempt=1, max_attempts=2).run_at == NOW


def test_a_negative_retry_in_never_schedules_into_the_past() -> None:
    assert _decide(Failed(BOOM, retry_in=-30), attempt=1, max_attempts=2).run_at == NOW


def test_retry_in_does_not_grant_an_attempt_beyond_the_last() -> None:
    finish = _decide(Failed(BOOM, retry_in=5), attempt=2, max_attempts=2)
    assert finish.state is JobState.DISCARDED
    assert finish.run_at is None


def test_the_backoff_jitter_comes_from_the_given_random_source() -> None:
    jittery = Backoff(base=100, factor=2, cap=10_000, jitter=0.5)

    def run_at(seed: int) -> datetime | None:
        return decide(
            Failed(BOOM),
            job_id=1,
            attempt=2,
            max_attempts=3,
            backoff=jittery,
            now=NOW,
            rng=random.Random(seed),
        ).run_at

    assert run_at(7) == run_at(7)
    first = run_at(7)
    assert first is not None
    assert NOW + timedelta(seconds=100) <= first <= NOW + timedelta(seconds=200)


def test_retry_raised_in_a_handler_carries_its_delay_in_seconds() -> None:
    assert Retry(after=timedelta(minutes=2)).after == 120.0
    assert Retry(after=7).after == 7
    assert Retry().after is None
    assert Retry(reason="rate limited").reason == "rate limited"
    assert str(Retry()) == "retry requested"


def test_discard_raised_in_a_handler_carries_its_reason() -> None:
    assert Discard("invalid cnpj").reason == "invalid cnpj"
    assert Discard().reason == "discarded by handler"
