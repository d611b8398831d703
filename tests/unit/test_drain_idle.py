"""When ``conveyor.testing.drain`` decides that nothing is left to do."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import pytest

from conveyor.domain.jobs import utcnow
from conveyor.domain.lifecycle import JobState
from conveyor.store.protocol import Store
from conveyor.testing import _idle

pytestmark = pytest.mark.anyio

NOW = utcnow()


class CountsThenDue:
    """Answers the two questions ``_idle`` asks, as a store read at two moments would."""

    def __init__(self, counts: dict[JobState, int], due: datetime | None) -> None:
        self.counts = {("default", state): n for state, n in counts.items()}
        self.due = due

    async def count_jobs(self, tenant_id: str) -> dict[tuple[str, JobState], int]:
        return self.counts

    async def next_due_at(self) -> datetime | None:
        return self.due

    def clock(self) -> datetime:
        return NOW


async def _is_idle(counts: dict[JobState, int], due: datetime | None) -> bool:
    return await _idle(cast(Store, cast(Any, CountsThenDue(counts, due))), "default")


async def test_jobs_available_or_running_are_work_left() -> None:
    assert not await _is_idle({JobState.AVAILABLE: 1}, None)
    assert not await _is_idle({JobState.RUNNING: 1}, None)


async def test_only_finished_jobs_is_nothing_left() -> None:
    assert await _is_idle({JobState.COMPLETED: 3, JobState.DISCARDED: 1}, None)


async def test_a_retry_due_soon_is_work_left_and_one_due_tomorrow_is_not() -> None:
    assert not await _is_idle({JobState.RETRYABLE: 1}, NOW + timedelta(milliseconds=20))
    assert await _is_idle({JobState.SCHEDULED: 1}, NOW + timedelta(days=1))


async def test_a_retry_promoted_between_the_two_reads_is_work_left() -> None:
    # counted as waiting, then no due time: it became available in between
    assert not await _is_idle({JobState.RETRYABLE: 1}, None)
