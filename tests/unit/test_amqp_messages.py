"""What an incoming RabbitMQ message becomes, and the bridge's small helpers."""

from __future__ import annotations

import gzip
import json
import random
import zlib

import pytest

from conveyor.amqp.connection import describe_error, reconnect_delay, safe_address
from conveyor.amqp.messages import MAX_BODY, Accepted, Refused, read_message
from conveyor.domain.errors import InvalidInput
from conveyor.settings import load_settings

CHANGE = {"contact_id": 7, "changed": {"email": "ana@example.com"}}


def test_json_becomes_the_parsed_payload_with_its_headers_kept() -> None:
    body = json.dumps(CHANGE).encode()
    decision = read_message(body, "application/json", "utf-8", "m-1")
    assert decision == Accepted(CHANGE, "m-1", "application/json", "utf-8")


def test_a_json_suffix_type_and_a_charset_parameter_are_json() -> None:
    body = json.dumps({"name": "José"}, ensure_ascii=False).encode("latin-1")
    decision = read_message(body, "application/vnd.crm+json; charset=latin-1", None, "m-2")
    assert isinstance(decision, Accepted)
    assert decision.payload == {"name": "José"}
    assert decision.content_encoding == "utf-8"


def test_text_becomes_the_decoded_string() -> None:
    decision = read_message("olá".encode("utf-16"), "text/plain", "utf-16", "m-3")
    assert decision == Accepted("olá", "m-3", "text/plain", "utf-16")


def test_gzip_bodies_are_inflated() -> None:
    body = gzip.compress(json.dumps(CHANGE).encode())
    decision = read_message(body, "application/json", "gzip", "m-4")
    assert isinstance(decision, Accepted)
    assert decision.payload == CHANGE
    assert decision.content_encoding == "gzip"


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "message_id", "reason"),
    [
        (b"{}", None, None, "m", "content_type is required"),
        (b"{}", "", None, "m", "content_type is required"),
        (b"<a/>", "application/xml", None, "m", "'application/xml' is not accepted"),
        (b"{}", "application/json", None, None, "message_id is required"),
        (b"{}", "application/json", None, "x" * 256, "message_id is longer"),
        (b"{not json", "application/json", None, "m", "body is not valid JSON"),
        (b"\xff\xfe\xfa", "application/json", "utf-8", "m", "does not decode as utf-8"),
        (b"{}", "application/json", "klingon", "m", "'klingon' is not a known encoding"),
        (b"not gzip", "application/json", "gzip", "m", "does not inflate as gzip"),
        (b"e30=", "application/json", "base64", "m", "'base64' is not a character set"),
        (b"7b7d", "application/json", "hex", "m", "'hex' is not a character set"),
        (b"{}", "text/plain", "rot13", "m", "'rot13' is not a character set"),
        (zlib.compress(b"{}"), "application/json", "zlib", "m", "'zlib' is not a character set"),
        (b"{}", "application/json; charset=bz2", None, "m", "'bz2' is not a character set"),
        (b"[" * 100_000, "application/json", None, "m", "nested too deeply"),
        (b" " * (MAX_BODY + 1), "text/plain", None, "m", "the job payload limit"),
        (gzip.compress(b" " * (MAX_BODY + 1)), "text/plain", "gzip", "m", "inflates to more"),
    ],
)
def test_messages_no_job_can_be_made_of_are_refused_with_a_reason(
    body: bytes, content_type: str | None, encoding: str | None, message_id: str | None, reason: str
) -> None:
    decision = read_message(body, content_type, encoding, message_id)
    assert isinstance(decision, Refused)
    assert reason in decision.reason


def test_reconnect_delays_grow_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    delays = [reconnect_delay(n, 30.0, rng) for n in range(12)]
    assert 0.1 <= delays[0] <= 0.5
    assert delays[3] > delays[0]
    assert all(d <= 30.0 for d in delays)
    assert delays[-1] >= 15.0


def test_the_broker_password_never_reaches_a_log_line() -> None:
    url = "amqp://crm:s3cret-pw@rabbit.internal:5672/prod"
    assert safe_address(url) == "rabbit.internal:5672/prod"
    error = describe_error(ConnectionError(f"cannot reach {url}"), url)
    assert "s3cret-pw" not in error
    assert "***" in error


def test_the_amqp_url_is_a_secret_setting_checked_at_start() -> None:
    settings = load_settings(amqp_url="amqp://crm:s3cret-pw@rabbit:5672/")
    assert settings.amqp_url is not None
    assert "s3cret-pw" not in repr(settings)
    assert settings.amqp_egress and settings.amqp_prefetch == 50
    with pytest.raises(InvalidInput, match="amqp_url"):
        load_settings(amqp_url="http://rabbit:5672/")
