"""Token buckets: at most ``per_minute`` events a minute per key, ``burst`` at once."""

from __future__ import annotations

import ipaddress
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

    def give_back(self, key: str) -> None:
        """Return a token taken for ``key`` (the event it stood for did not count)."""
        if key in self._buckets:
            tokens, last = self._buckets[key]
            self._buckets[key] = (min(self.burst, tokens + 1), last)


def address_key(address: str) -> str:
    """The bucket of a client address: IPv4 as is, IPv6 by its /64 (one site's
    addresses), an IPv4-mapped IPv6 address as its IPv4 one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
