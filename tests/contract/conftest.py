"""Contract-suite helpers: a clock the test moves by hand, and a short way to enqueue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from conveyor.domain.jobs import Job, new_job, utcnow
from conveyor.store.protocol import Store
from conveyor.store.sealing import SecretBox

TENANT = "default"
BOX = SecretBox("the contract suite's secret key")
"""Seals the secrets of the stores that keep some."""


class FakeClock:
    """A clock that stands still until the test advances it (whole seconds, UTC)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move time forward and return the new now."""
        self.now += timedelta(seconds=seconds)
        return self.now


Enqueue = Callable[..., Awaitable[Job]]


@pytest.fixture
def clock(store: Store) -> FakeClock:
    """The store's clock, replaced by one the test controls (starting near real time)."""
    fake = FakeClock(utcnow().replace(microsecond=0))
    store.clock = fake
    return fake


@pytest.fixture
def enqueue(store: Store, clock: FakeClock) -> Enqueue:
    """``await enqueue("task", priority=1, ...)``: validate with ``new_job`` and store one job."""

    async def enqueue_one(task: str = "report.build", payload: Any = None, **fields: Any) -> Job:
        fields.setdefault("now", clock())
        (job,) = await store.enqueue([new_job(task, payload, **fields)])
        return job

    return enqueue_one
