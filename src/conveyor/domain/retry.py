"""Retry policy: how long to wait before the next attempt."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from conveyor.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``base * factor ** (attempt - 1)``, capped at ``cap``.

    ``jitter`` is the fraction of the delay drawn at random (0.25: the delay is
    between 75 % and 100 % of the exponential value), so that jobs that failed
    together do not all come back together.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        for name in ("base", "factor", "cap", "jitter"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidInput(f"backoff.{name}", "must be a finite number")
        if self.base < 0:
            raise InvalidInput("backoff.base", "must be zero or more seconds")
        if self.factor < 1:
            raise InvalidInput("backoff.factor", "must be 1 or more")
        if self.cap < self.base:
            raise InvalidInput("backoff.cap", "must be at least base")
        if not 0 <= self.jitter <= 1:
            raise InvalidInput("backoff.jitter", "must be between 0 and 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        draw = (rng or _RNG).random()
        return self._exponential(max(attempt - 1, 0)) * (1 - self.jitter * draw)

    def _exponential(self, exponent: int) -> float:
        if self.base == 0 or self.factor == 1:
            return self.base
        # Past this exponent the delay is capped; checking first avoids overflow.
        if exponent >= math.log(self.cap / self.base, self.factor):
            return self.cap
        return min(self.cap, self.base * self.factor**exponent)


_RNG = random.Random()  # noqa: S311 - jitter, not cryptography
