"""Token buckets and the keys they are kept under."""

from __future__ import annotations

from conveyor.domain.ratelimit import TokenBuckets, address_key


def test_a_bucket_refills_over_time_and_a_returned_token_counts_again() -> None:
    buckets = TokenBuckets(per_minute=60, burst=2)
    assert buckets.take("a", 0.0) == 0 and buckets.take("a", 0.0) == 0
    assert buckets.take("a", 0.0) == 1.0  # one a second: the next in a second
    buckets.give_back("a")
    assert buckets.take("a", 0.0) == 0
    assert buckets.take("a", 1.0) == 0  # refilled
    assert buckets.take("b", 0.0) == 0  # another key, another bucket


def test_no_limit_takes_nothing() -> None:
    buckets = TokenBuckets(per_minute=0, burst=1)
    assert not buckets.enabled
    assert all(buckets.take("a", 0.0) == 0 for _ in range(100))


def test_ipv6_clients_share_the_bucket_of_their_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("unknown") == "unknown"
