"""Backoff: exponential growth, a cap, jitter within its bounds, and checked parameters."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.errors import InvalidInput
from conveyor.domain.retry import Backoff


class FixedDraw(random.Random):
    """A random source whose ``random()`` always returns one value."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_delay_grows_by_the_factor_with_each_attempt() -> None:
    backoff = Backoff(base=2, factor=3, cap=10_000, jitter=0)
    assert [backoff.delay(n) for n in range(1, 6)] == [2, 6, 18, 54, 162]


def test_the_default_backoff_doubles_from_one_second() -> None:
    backoff = Backoff()
    assert [backoff.delay(n, FixedDraw(0.0)) for n in range(1, 5)] == [1, 2, 4, 8]


def test_delay_is_capped() -> None:
    backoff = Backoff(base=1, factor=10, cap=500, jitter=0)
    assert backoff.delay(3) == 100
    assert backoff.delay(4) == 500
    assert backoff.delay(50) == 500


def test_a_huge_attempt_number_is_capped_without_overflowing() -> None:
    assert Backoff(base=1, factor=2, cap=3600, jitter=0).delay(10**9) == 3600


def test_a_slow_factor_keeps_growing_until_the_cap_even_after_65_attempts() -> None:
    # max_attempts may be up to 1000; with factor 1.1 the exponential reaches the
    # 3600 s cap only at attempt 88, so attempt 100 must wait the full cap.
    backoff = Backoff(base=1, factor=1.1, cap=3600, jitter=0)
    assert backoff.delay(100) == 3600
    assert backoff.delay(80) == pytest.approx(1.1**79)


@pytest.mark.parametrize("attempt", [0, -5])
def test_an_attempt_below_one_waits_like_the_first(attempt: int) -> None:
    backoff = Backoff(base=4, factor=2, cap=100, jitter=0)
    assert backoff.delay(attempt) == backoff.delay(1) == 4


def test_a_factor_of_one_waits_the_same_every_time() -> None:
    backoff = Backoff(base=15, factor=1, cap=15, jitter=0)
    assert {backoff.delay(n) for n in range(1, 20)} == {15}


def test_jitter_takes_at_most_its_fraction_off_the_delay() -> None:
    backoff = Backoff(base=100, factor=2, cap=10_000, jitter=0.25)
    assert backoff.delay(1, FixedDraw(0.0)) == 100
    assert backoff.delay(1, FixedDraw(0.5)) == 87.5
    assert backoff.delay(1, FixedDraw(math.nextafter(1.0, 0.0))) >= 75


def test_jitter_spreads_jobs_that_failed_together() -> None:
    backoff = Backoff(base=60, factor=2, cap=3600, jitter=0.5)
    rng = random.Random(1234)
    delays = {backoff.delay(1, rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(30 < d <= 60 for d in delays)


def test_without_a_random_source_the_delay_still_stays_in_bounds() -> None:
    backoff = Backoff(base=10, factor=2, cap=3600, jitter=0.25)
    assert all(7.5 < backoff.delay(1) <= 10 for _ in range(200))


@given(
    base=st.floats(min_value=0, max_value=1000),
    factor=st.floats(min_value=1, max_value=10),
    extra_cap=st.floats(min_value=0, max_value=100_000),
    jitter=st.floats(min_value=0, max_value=1),
    attempt=st.integers(min_value=1, max_value=65),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_within_the_jitter_band_of_the_capped_exponential(
    base: float, factor: float, extra_cap: float, jitter: float, attempt: int, seed: int
) -> None:
    backoff = Backoff(base=base, factor=factor, cap=base + extra_cap, jitter=jitter)
    raw = min(backoff.cap, base * factor ** (attempt - 1))
    delay = backoff.delay(attempt, random.Random(seed))
    assert raw * (1 - jitter) - 1e-9 <= delay <= raw + 1e-9
    assert 0 <= delay <= backoff.cap + 1e-9


@given(
    attempt=st.integers(min_value=1, max_value=60),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_a_later_attempt_never_waits_less_for_the_same_draw(attempt: int, draw: float) -> None:
    backoff = Backoff(base=0.5, factor=1.7, cap=7200, jitter=0.3)
    assert backoff.delay(attempt + 1, FixedDraw(draw)) >= backoff.delay(attempt, FixedDraw(draw))


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"base": -1}, "backoff.base"),
        ({"factor": 0.5}, "backoff.factor"),
        ({"factor": 0}, "backoff.factor"),
        ({"base": 10, "cap": 5}, "backoff.cap"),
        ({"jitter": -0.1}, "backoff.jitter"),
        ({"jitter": 1.01}, "backoff.jitter"),
        ({"jitter": float("nan")}, "backoff.jitter"),
    ],
    ids=[
        "negative base",
        "factor below one",
        "factor zero",
        "cap below base",
        "jitter < 0",
        "jitter > 1",
        "jitter nan",
    ],
)
def test_invalid_parameters_are_refused_with_their_name(
    fields: dict[str, float], named: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        Backoff(**fields)
    assert caught.value.field == named


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"base": float("nan")}, "backoff.base"),
        ({"factor": float("nan")}, "backoff.factor"),
        ({"cap": float("nan")}, "backoff.cap"),
    ],
    ids=["base nan", "factor nan", "cap nan"],
)
def test_nan_parameters_are_refused_with_their_name(fields: dict[str, float], named: str) -> None:
    # NaN slips past "< 0" style checks and yields NaN delays (cap) or ignores the cap.
    with pytest.raises(InvalidInput) as caught:
        Backoff(**fields)
    assert caught.value.field == named


def test_edge_values_are_accepted() -> None:
    backoff = Backoff(base=0, factor=1, cap=0, jitter=1)
    assert backoff.delay(5, FixedDraw(0.9)) == 0
