"""Token buckets: at most ``per_minute`` events a minute per key, ``burst`` at once."""

from __future__ import annotations

from collections import OrderedDict

MAX_BUCKETS = 50_000
"""Keys remembered at most (the least recently used are forgotten first)."""


class TokenBuckets:
    """One token bucket per key, refilled continuously; ``per_minute`` 0 means no limit."""

    def __init__(self, per_minute: float, burst: int, max_keys: int = MAX_BUCKETS) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether a limit applies at all."""
        return self.rate > 0

    def waiting(self, key: str, now: float) -> float:
        """The seconds until ``key`` has a token (0: it has one now); takes nothing."""
        if not self.enabled or key not in self._buckets:
            return 0.0
        tokens, last = self._buckets[key]
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key`` at ``now`` (monotonic seconds); 0 if one was
        there, else the seconds until one will be (nothing taken)."""
        if not self.enabled:
            return 0.0
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait
