"""The pure webhook rules: filters, the body, signatures, the retry schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import Event
from conveyor.domain.webhooks import (
    RETRY_WINDOW,
    AttemptResult,
    Subscription,
    SubscriptionSpec,
    check_filters,
    event_body,
    matches,
    new_secret,
    next_attempt_at,
    request_headers,
    retry_delay,
    should_disable,
    sign,
    type_matches,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENT = Event(7, "acme", "job.succeeded", 3, {"task": "report", "queue": "q1"}, NOW)


@pytest.mark.parametrize(
    ("patterns", "kind", "expected"),
    [
        ((), "job.started", True),
        (("job.*",), "job.started", True),
        (("job.*",), "jobs.started", False),
        (("job.started",), "job.started", True),
        (("job.started",), "job.succeeded", False),
        (("*",), "webhook.disabled", True),
        (("queue.*", "job.note"), "job.note", True),
    ],
)
def test_event_types_match_exactly_or_by_prefix(
    patterns: tuple[str, ...], kind: str, expected: bool
) -> None:
    assert type_matches(patterns, kind) is expected


def test_queue_and_task_filters_need_the_event_to_name_them() -> None:
    assert matches(SubscriptionSpec("http://x", queues=("q1",), tasks=("report",)), EVENT)
    assert not matches(SubscriptionSpec("http://x", queues=("q2",)), EVENT)
    assert not matches(SubscriptionSpec("http://x", tasks=("other",)), EVENT)
    nameless = Event(8, "acme", "queue.paused", None, {}, NOW)
    assert not matches(SubscriptionSpec("http://x", queues=("q1",)), nameless)


def test_a_wildcard_only_ends_a_prefix() -> None:
    assert check_filters("event_types", [" job.* ", "job.*", "job.note"]) == ("job.*", "job.note")
    with pytest.raises(InvalidInput, match="event_types"):
        check_filters("event_types", ["job.*.x"])
    with pytest.raises(InvalidInput, match="queues"):
        check_filters("queues", [""])


def test_the_body_is_the_event_as_json() -> None:
    assert event_body(EVENT) == (
        '{"created_at":"2026-03-01T12:00:00+00:00","data":{"queue":"q1","task":"report"},'
        '"id":7,"job_id":3,"tenant":"acme","type":"job.succeeded"}'
    )


def test_signatures_are_standard_webhooks_and_verify_with_either_secret() -> None:
    old, new = new_secret(), new_secret()
    body, timestamp = event_body(EVENT), int(datetime.now(UTC).timestamp())
    headers = request_headers([new, old], "evt_7", timestamp, body)
    assert headers["webhook-id"] == "evt_7"
    assert headers["content-type"] == "application/json"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {**EVENT_JSON}
    stamp = datetime.fromtimestamp(timestamp, UTC)
    assert sign(new, "evt_7", timestamp, body) == Webhook(new).sign("evt_7", stamp, body)


EVENT_JSON = {
    "id": 7,
    "type": "job.succeeded",
    "tenant": "acme",
    "job_id": 3,
    "data": {"task": "report", "queue": "q1"},
    "created_at": "2026-03-01T12:00:00+00:00",
}


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    assert secret != new_secret()


@pytest.mark.parametrize(
    ("attempts", "base"),
    [(1, 5), (2, 30), (3, 120), (4, 600), (5, 1800), (6, 3600), (7, 10800), (30, 10800)],
)
def test_retries_back_off_with_jitter(attempts: int, base: float) -> None:
    delay = retry_delay(attempts, random.Random(attempts)).total_seconds()
    assert base * 0.9 <= delay <= base * 1.1


def test_retries_go_on_for_a_day_then_stop() -> None:
    start = NOW
    later = start + RETRY_WINDOW - timedelta(seconds=1)
    assert next_attempt_at(9, start, later) is not None
    assert next_attempt_at(9, start, start + RETRY_WINDOW) is None


def test_schedule_covers_more_than_a_day() -> None:
    now, attempts = NOW, 0
    while (nxt := next_attempt_at(attempts + 1, NOW, now, random.Random(0))) is not None:
        now, attempts = nxt, attempts + 1
    assert now - NOW >= RETRY_WINDOW - timedelta(hours=4)
    assert 10 <= attempts <= 16


def test_only_2xx_is_delivered_and_disabling_needs_a_limit() -> None:
    assert AttemptResult(204, 1).ok and not AttemptResult(301, 1).ok
    assert not AttemptResult(None, 1, error="refused").ok
    assert should_disable(10, 10) and not should_disable(9, 10) and not should_disable(99, 0)


def _subscription(secret: str, previous: str | None = None) -> Subscription:
    return Subscription(
        id=3,
        tenant_id="acme",
        spec=SubscriptionSpec(url="https://example.test/hook"),
        secret=secret,
        previous_secret=previous,
        previous_secret_until=NOW + timedelta(hours=1),
        cursor=0,
        failures=0,
        disabled_reason="",
        created_at=NOW,
        updated_at=NOW,
    )


def test_signing_uses_the_previous_secret_only_during_the_overlap() -> None:
    webhook = _subscription("whsec_bmV3", "whsec_b2xk")
    assert webhook.signing_secrets(NOW) == ["whsec_bmV3", "whsec_b2xk"]
    assert webhook.signing_secrets(NOW + timedelta(hours=2)) == ["whsec_bmV3"]


def test_a_subscription_without_its_secret_cannot_sign() -> None:
    # Read without its secrets (a list) or sealed with another key: an empty key
    # would make signatures anyone can forge.
    with pytest.raises(ValueError, match="webhook 3"):
        _subscription("").signing_secrets(NOW)
