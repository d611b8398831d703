"""Incoming hooks' pure rules: signature checks (Standard Webhooks, cross-checked with the
``standardwebhooks`` package, and GitHub-style HMAC), kept headers, payloads, sender
addresses and specs."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from conveyor.domain.errors import InvalidInput
from conveyor.domain.hooks import (
    REDACTED,
    BadSignature,
    HookSpec,
    IncomingHook,
    UnsupportedBody,
    VerifyScheme,
    check_secret,
    checked_spec,
    delivery_id_of,
    first_values,
    hmac_signature,
    kept_headers,
    new_hook_secret,
    parse_networks,
    payload_of,
    redact_hook_paths,
    sender_ip,
    token_hash,
    verify,
    verify_hmac,
    verify_standard,
)
from conveyor.domain.webhooks import request_headers, sign

NOW = datetime.fromtimestamp(int(time.time()), UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"backup":"done","size":42}'


def _hook(verify_scheme: VerifyScheme, secret: str = SECRET, **spec: object) -> IncomingHook:
    return IncomingHook(
        id=7,
        tenant_id="acme",
        spec=HookSpec(name="backups", verify=verify_scheme, **spec),  # type: ignore[arg-type]
        secret=secret,
        created_at=NOW,
        updated_at=NOW,
    )


def _standard_headers(body: bytes, at: datetime = NOW, msg_id: str = "msg_1") -> dict[str, str]:
    signature = Webhook(SECRET).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


# -- Standard Webhooks ---------------------------------------------------------------


def test_a_request_signed_by_the_standardwebhooks_package_is_accepted() -> None:
    verify_standard(SECRET, _standard_headers(BODY), BODY, NOW)


def test_our_signature_matches_the_packages_and_the_package_accepts_ours() -> None:
    timestamp = int(NOW.timestamp())
    assert sign(SECRET, "msg_1", timestamp, BODY) == Webhook(SECRET).sign(
        "msg_1", NOW, BODY.decode()
    )
    # The package checks the timestamp against the real clock.
    headers = request_headers([SECRET], "msg_1", int(time.time()), BODY.decode())
    assert Webhook(SECRET).verify(BODY, headers) == {"backup": "done", "size": 42}


def test_a_non_utf8_body_is_signed_and_verified_as_bytes() -> None:
    body = b"\xff\x00\xfe binary"
    timestamp = int(NOW.timestamp())
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(SECRET, "msg_2", timestamp, body),
    }
    verify_standard(SECRET, headers, body, NOW)
    with pytest.raises(BadSignature):
        verify_standard(SECRET, headers, body + b"!", NOW)


def test_one_matching_signature_among_several_is_enough_for_a_rotation() -> None:
    old = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA=="
    headers = _standard_headers(BODY)
    timestamp = int(NOW.timestamp())
    headers["webhook-signature"] = (
        f"v1,bm9wZQ== {sign(old, 'msg_1', timestamp, BODY)} {headers['webhook-signature']}"
    )
    verify_standard(SECRET, headers, BODY, NOW)
    verify_standard(old, headers, BODY, NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1,AAAA"},
        {"webhook-signature": "v2,whatever"},
        {"webhook-id": "msg_other"},
    ],
)
def test_a_wrong_signature_is_refused(change: dict[str, str]) -> None:
    headers = _standard_headers(BODY) | change
    with pytest.raises(BadSignature):
        verify_standard(SECRET, headers, BODY, NOW)


def test_a_changed_body_or_another_secret_is_refused() -> None:
    with pytest.raises(BadSignature, match="no webhook-signature matches"):
        verify_standard(SECRET, _standard_headers(BODY), BODY + b" ", NOW)
    with pytest.raises(BadSignature):
        verify_standard(
            new_hook_secret(VerifyScheme.STANDARD_WEBHOOKS), _standard_headers(BODY), BODY, NOW
        )


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_timestamp_more_than_five_minutes_away_is_refused(offset: timedelta) -> None:
    headers = _standard_headers(BODY, at=NOW + offset)
    with pytest.raises(BadSignature, match="5 minutes"):
        verify_standard(SECRET, headers, BODY, NOW)


def test_a_timestamp_within_five_minutes_is_accepted() -> None:
    verify_standard(SECRET, _standard_headers(BODY, at=NOW - timedelta(minutes=4)), BODY, NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": "msg_1", "webhook-timestamp": str(int(NOW.timestamp()))},
        {"webhook-id": "msg_1", "webhook-timestamp": "soon", "webhook-signature": "v1,x"},
        {"webhook-id": "msg_1", "webhook-timestamp": "1e9", "webhook-signature": "v1,x"},
        {"webhook-id": "msg_1", "webhook-timestamp": "9" * 40, "webhook-signature": "v1,x"},
        {"webhook-id": "msg_1", "webhook-timestamp": "-5", "webhook-signature": "v1,x"},
        {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(NOW.timestamp())),
            "webhook-signature": "v1,%%%not-base64 ,,, v1,",
        },
    ],
)
def test_malformed_headers_are_a_bad_signature_never_a_crash(headers: dict[str, str]) -> None:
    with pytest.raises(BadSignature):
        verify_standard(SECRET, headers, BODY, NOW)


# -- hmac-sha256 (GitHub's X-Hub-Signature-256) ----------------------------------------

GITHUB_SECRET = "It's a Secret to Everybody"


def test_githubs_documented_example_is_accepted() -> None:
    # GitHub's docs: this secret and payload give this signature.
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hmac_signature(GITHUB_SECRET, body) == expected
    verify_hmac(GITHUB_SECRET, "x-hub-signature-256", {"x-hub-signature-256": expected}, body)


def test_the_prefix_is_optional_and_case_does_not_matter() -> None:
    digest = hmac.new(GITHUB_SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    for value in (digest, digest.upper(), "sha256=" + digest, f"  sha256={digest} "):
        verify_hmac(GITHUB_SECRET, "x-signature", {"x-signature": value}, BODY)


@pytest.mark.parametrize(
    "value",
    ["", "sha256=", "sha1=abc", "sha256=zz" + "0" * 62, "sha256=" + "0" * 63, "0" * 64, "é" * 64],
)
def test_a_missing_malformed_or_wrong_hmac_is_refused(value: str) -> None:
    with pytest.raises(BadSignature):
        verify_hmac(GITHUB_SECRET, "x-hub-signature-256", {"x-hub-signature-256": value}, BODY)


def test_the_hooks_scheme_decides_what_is_checked() -> None:
    verify(_hook(VerifyScheme.NONE), {}, BODY, NOW)
    with pytest.raises(BadSignature):
        verify(_hook(VerifyScheme.STANDARD_WEBHOOKS), {}, BODY, NOW)
    hook = _hook(VerifyScheme.HMAC_SHA256, GITHUB_SECRET, signature_header="x-sig")
    verify(hook, {"x-sig": hmac_signature(GITHUB_SECRET, BODY)}, BODY, NOW)
    with pytest.raises(BadSignature, match="x-sig"):
        verify(hook, {"x-hub-signature-256": hmac_signature(GITHUB_SECRET, BODY)}, BODY, NOW)


# -- secrets, specs, headers, payloads, addresses ---------------------------------------


def test_secrets_are_made_and_checked_per_scheme() -> None:
    made = new_hook_secret(VerifyScheme.STANDARD_WEBHOOKS)
    assert made.startswith("whsec_") and check_secret(VerifyScheme.STANDARD_WEBHOOKS, made) == made
    assert len(new_hook_secret(VerifyScheme.HMAC_SHA256)) >= 32
    assert new_hook_secret(VerifyScheme.NONE) == ""
    with pytest.raises(InvalidInput, match="secret"):
        check_secret(VerifyScheme.STANDARD_WEBHOOKS, "whsec_not base64!")
    with pytest.raises(InvalidInput, match="secret"):
        check_secret(VerifyScheme.HMAC_SHA256, "short")


def test_a_spec_is_checked_and_its_header_names_lower_cased() -> None:
    spec = checked_spec(
        HookSpec(name=" backups ", delivery_header="X-GitHub-Delivery", task="backup.done")
    )
    assert spec.name == "backups" and spec.delivery_header == "x-github-delivery"
    for bad, field in (
        (HookSpec(name=""), "name"),
        (HookSpec(name="a", delivery_header="bad header"), "delivery_header"),
        (HookSpec(name="a", task="no spaces allowed"), "task"),
        (HookSpec(name="a", task="shell"), "task"),
        (HookSpec(name="a", queue="q"), "task"),
        (HookSpec(name="a", task="t", priority=10), "priority"),
    ):
        with pytest.raises(InvalidInput) as caught:
            checked_spec(bad)
        assert caught.value.field == field


def test_authorization_and_cookie_are_redacted_everything_else_kept_in_order() -> None:
    raw = [("Content-Type", "text/plain"), ("Authorization", "Bearer x"), ("cookie", "a=b")]
    raw.append(("X-Dup", "1"))
    raw.append(("X-Dup", "2"))
    assert kept_headers(raw) == (
        ("Content-Type", "text/plain"),
        ("Authorization", REDACTED),
        ("cookie", REDACTED),
        ("X-Dup", "1"),
        ("X-Dup", "2"),
    )
    assert first_values(raw)["x-dup"] == "1"


def test_proxy_credentials_and_api_keys_are_redacted_too() -> None:
    raw = [("Proxy-Authorization", "Basic eA=="), ("X-API-Key", "ck_live_1"), ("X-Key", "k")]
    assert kept_headers(raw) == (
        ("Proxy-Authorization", REDACTED),
        ("X-API-Key", REDACTED),
        ("X-Key", "k"),
    )


def test_the_delivery_id_comes_from_the_hooks_header() -> None:
    hook = _hook(VerifyScheme.NONE, delivery_header="x-github-delivery")
    assert delivery_id_of(hook, {"x-github-delivery": " abc "}) == "abc"
    assert delivery_id_of(hook, {"webhook-id": "abc"}) is None
    with pytest.raises(InvalidInput):
        delivery_id_of(hook, {"x-github-delivery": "x" * 201})


def test_a_standard_webhooks_delivery_is_always_its_signed_webhook_id() -> None:
    hook = _hook(VerifyScheme.STANDARD_WEBHOOKS, delivery_header="x-delivery")
    headers = {"webhook-id": "msg_1", "x-delivery": "replayed-under-a-new-id"}
    assert delivery_id_of(hook, headers) == "msg_1"


def test_the_payload_is_parsed_json_or_utf8_text() -> None:
    assert payload_of(BODY, "application/json; charset=utf-8") == {"backup": "done", "size": 42}
    assert payload_of(b'{"a":1}', "application/cloudevents+json") == {"a": 1}
    assert payload_of("olá".encode(), "text/plain") == "olá"
    assert payload_of(b"", "application/json") is None
    with pytest.raises(InvalidInput, match="JSON"):
        payload_of(b"{nope", "application/json")
    with pytest.raises(UnsupportedBody):
        payload_of(b"\xff\xfe", "application/octet-stream")


def test_the_sender_is_the_peer_unless_it_is_a_trusted_proxy() -> None:
    proxies = parse_networks(["10.0.0.0/8", "::1"])
    assert sender_ip("203.0.113.9", ["198.51.100.1"], proxies) == "203.0.113.9"
    assert sender_ip("10.1.2.3", ["198.51.100.1"], proxies) == "198.51.100.1"
    chain = ["6.6.6.6, 198.51.100.1", "10.0.0.2"]
    assert sender_ip("10.1.2.3", chain, proxies) == "198.51.100.1"
    assert sender_ip("::1", [], proxies) == "::1"
    assert sender_ip("10.1.2.3", ["10.9.9.9"], proxies) == "10.1.2.3"
    assert sender_ip(None, [], proxies) == "unknown"
    for forged in ("not-an-ip", "<script>", "198.51.100.1:443", "x" * 300):
        assert sender_ip("10.1.2.3", [forged], proxies) == "10.1.2.3"
    assert sender_ip("10.1.2.3", ["2001:DB8::1"], proxies) == "2001:db8::1"
    with pytest.raises(InvalidInput, match="trusted_proxies"):
        parse_networks(["not-a-network"])


def test_a_token_is_looked_up_by_its_sha256() -> None:
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()


def test_hook_urls_in_log_lines_are_redacted_and_api_paths_are_not() -> None:
    line = '203.0.113.7:5 - "POST /hooks/s3cr3t-T0k_en?x=1 HTTP/1.1" 500'
    assert redact_hook_paths(line) == '203.0.113.7:5 - "POST /hooks/redacted?x=1 HTTP/1.1" 500'
    assert redact_hook_paths("/hooks/abc") == "/hooks/redacted"
    url = "POST https://c.example:8443/hooks/abc and http://[::1]/hooks/d"
    assert redact_hook_paths(url) == (
        "POST https://c.example:8443/hooks/redacted and http://[::1]/hooks/redacted"
    )
    assert redact_hook_paths("GET /api/v1/hooks/3/receipts") == "GET /api/v1/hooks/3/receipts"
