"""Incoming hooks: per-tenant endpoints with a secret URL, and the requests they keep.

The records (:class:`IncomingHook`, :class:`Receipt`) and the pure rules about them:
which spec is valid (:func:`checked_spec`), how a signature is checked (:func:`verify`,
Standard Webhooks or a GitHub-style HMAC), which headers are kept (:func:`kept_headers`),
what payload a job gets (:func:`payload_of`) and who sent a request (:func:`sender_ip`).
Standard library only; the receiver service does the I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from conveyor.domain.digits import is_digits
from conveyor.domain.errors import ConveyorError, InvalidInput
from conveyor.domain.jobs import check_name
from conveyor.domain.webhooks import SECRET_PREFIX, new_secret, sign

TOKEN_BYTES = 32
DEFAULT_DELIVERY_HEADER = "webhook-id"
DEFAULT_SIGNATURE_HEADER = "x-hub-signature-256"
TOLERANCE = timedelta(minutes=5)
"""How far a Standard Webhooks timestamp may be from the server's clock."""
MAX_DELIVERY_ID = 200
MAX_NAME = 128
MAX_DESCRIPTION = 500
REDACTED = "[redacted]"
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
"""Headers whose values are not kept (the name is, with ``[redacted]``)."""
SHELL_TASK = "shell"

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_HOOK_PATH = re.compile(r"(^|[\s\"'(]|//[^/\s\"']+)/hooks/[^/?#\s\"']+")
"""A hook's URL path (its token) where a path starts, alone or after a URL's host: not
``/api/v1/hooks/3``."""
REDACTED_HOOK_PATH = "/hooks/redacted"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Headers = Mapping[str, str]
"""Request headers by lower-case name (the first value of each)."""


class VerifyScheme(StrEnum):
    """How a hook checks that a request comes from its sender."""

    NONE = "none"
    STANDARD_WEBHOOKS = "standard-webhooks"
    HMAC_SHA256 = "hmac-sha256"


class BadSignature(ConveyorError):
    """The request's signature is missing, malformed, expired or wrong."""


class UnsupportedBody(ConveyorError):
    """The body cannot become a job's payload: it is neither JSON nor UTF-8 text."""


@dataclass(frozen=True, slots=True)
class HookSpec:
    """What a tenant asks for: a named endpoint, how it verifies, what it enqueues."""

    name: str
    description: str = ""
    enabled: bool = True
    verify: VerifyScheme = VerifyScheme.NONE
    signature_header: str = DEFAULT_SIGNATURE_HEADER
    """The header carrying the ``hmac-sha256`` signature."""
    delivery_header: str = DEFAULT_DELIVERY_HEADER
    """The header whose value identifies a delivery (redeliveries are stored once)."""
    task: str | None = None
    """The task to enqueue with each request's body; ``None``: store only."""
    queue: str | None = None
    priority: int | None = None


@dataclass(frozen=True, slots=True)
class IncomingHook:
    """A stored hook. Its secret never leaves the service layer; its token is not kept."""

    id: int
    tenant_id: str
    spec: HookSpec
    secret: str = field(repr=False)
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewReceipt:
    """A request about to be stored, body included."""

    id: str
    tenant_id: str
    hook_id: int
    delivery_id: str | None
    method: str
    content_type: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)
    ip: str
    received_at: datetime
    verified: bool
    task: str | None


@dataclass(frozen=True, slots=True)
class Receipt:
    """A stored request, without its body (read that on its own: it may be large)."""

    id: str
    tenant_id: str
    hook_id: int
    delivery_id: str | None
    method: str
    content_type: str
    headers: tuple[tuple[str, str], ...]
    size: int
    ip: str
    received_at: datetime
    verified: bool
    task: str | None
    """The task the request was to be enqueued as, when it was received."""
    job_id: int | None


@dataclass(frozen=True, slots=True)
class ReceiptFilter:
    """Which receipts a list shows: a page before a cursor, by delivery id and time."""

    limit: int = 50
    before: str | None = None
    delivery_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def new_token() -> str:
    """A fresh URL token (shown once; only its hash is kept)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The SHA-256 a token is looked up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_receipt_id() -> str:
    """A fresh receipt id."""
    return secrets.token_hex(16)


def new_hook_secret(scheme: VerifyScheme) -> str:
    """A fresh verification secret for ``scheme`` (none for ``none``)."""
    if scheme is VerifyScheme.STANDARD_WEBHOOKS:
        return new_secret()
    if scheme is VerifyScheme.HMAC_SHA256:
        return secrets.token_urlsafe(32)
    return ""


def check_secret(scheme: VerifyScheme, secret: str) -> str:
    """A secret given for ``scheme``; ``InvalidInput`` if it cannot verify anything."""
    if scheme is VerifyScheme.STANDARD_WEBHOOKS:
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("secret", "must be whsec_ and base64 (Standard Webhooks)") from None
        if not 16 <= len(key) <= 128:
            raise InvalidInput("secret", "must decode to 16 to 128 bytes")
    elif scheme is VerifyScheme.HMAC_SHA256 and not 8 <= len(secret) <= 512:
        raise InvalidInput("secret", "must be 8 to 512 characters")
    return secret


def check_header_name(field_name: str, value: str) -> str:
    """An HTTP header name, lower-cased."""
    if not _HEADER_NAME.match(value):
        raise InvalidInput(field_name, "must be an HTTP header name (letters, digits, '-')")
    return value.lower()


def checked_spec(spec: HookSpec) -> HookSpec:
    """``spec`` with its names checked and header names lower-cased."""
    name = spec.name.strip()
    if not 1 <= len(name) <= MAX_NAME or "\x00" in name:
        raise InvalidInput("name", f"must be 1 to {MAX_NAME} characters")
    if len(spec.description) > MAX_DESCRIPTION or "\x00" in spec.description:
        raise InvalidInput("description", f"must be at most {MAX_DESCRIPTION} characters")
    if spec.task is not None:
        check_name("task", spec.task)
        if spec.task == SHELL_TASK:
            raise InvalidInput(
                "task", "a hook cannot enqueue shell jobs: its body comes from outside"
            )
    if spec.queue is not None:
        check_name("queue", spec.queue)
    if spec.priority is not None and not 0 <= spec.priority <= 9:
        raise InvalidInput("priority", "must be from 0 (highest) to 9")
    if spec.task is None and (spec.queue is not None or spec.priority is not None):
        raise InvalidInput("task", "is needed for a queue or a priority")
    return replace(
        spec,
        name=name,
        verify=VerifyScheme(spec.verify),
        signature_header=check_header_name("signature_header", spec.signature_header),
        delivery_header=check_header_name("delivery_header", spec.delivery_header),
    )


# -- verification ------------------------------------------------------------------


def verify(hook: IncomingHook, headers: Headers, body: bytes, now: datetime) -> None:
    """Check a request's signature by the hook's scheme; ``BadSignature`` if it fails."""
    scheme = hook.spec.verify
    if scheme is VerifyScheme.STANDARD_WEBHOOKS:
        verify_standard(hook.secret, headers, body, now)
    elif scheme is VerifyScheme.HMAC_SHA256:
        verify_hmac(hook.secret, hook.spec.signature_header, headers, body)


def verify_standard(secret: str, headers: Headers, body: bytes, now: datetime) -> None:
    """Standard Webhooks: ``webhook-signature`` holds ``v1,<base64>`` signatures of
    ``id.timestamp.body`` (any one matching is enough), the timestamp within 5 minutes."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not stamp or not signatures:
        raise BadSignature("webhook-id, webhook-timestamp and webhook-signature are needed")
    if not is_digits(stamp) or len(stamp) > 12:
        raise BadSignature("webhook-timestamp must be seconds since the epoch")
    timestamp = int(stamp)
    if abs(now.timestamp() - timestamp) > TOLERANCE.total_seconds():
        raise BadSignature("webhook-timestamp is more than 5 minutes from now")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise BadSignature("no webhook-signature matches")


def verify_hmac(secret: str, header: str, headers: Headers, body: bytes) -> None:
    """GitHub-style: ``header`` holds the hex HMAC-SHA256 of the body, maybe after
    ``sha256=``."""
    given = headers.get(header, "").strip().lower().removeprefix("sha256=")
    if not given:
        raise BadSignature(f"the {header} header is missing")
    if not _HEX.match(given):
        raise BadSignature(f"the {header} header is not a hex SHA-256 signature")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise BadSignature(f"the {header} signature does not match")


def hmac_signature(secret: str, body: bytes) -> str:
    """The ``sha256=<hex>`` value a sender puts in the signature header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- what is kept, what is enqueued ----------------------------------------------


def first_values(raw: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, the first value of each."""
    found: dict[str, str] = {}
    for name, value in raw:
        found.setdefault(name.lower(), value)
    return found


def kept_headers(raw: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The headers to store, in order, with credentials (``Authorization``,
    ``Proxy-Authorization``, ``Cookie``, ``X-API-Key``) redacted."""
    return tuple(
        (name, REDACTED if name.lower() in REDACTED_HEADERS else value) for name, value in raw
    )


def delivery_id_of(hook: IncomingHook, headers: Headers) -> str | None:
    """The request's delivery id, if it has one: for ``standard-webhooks`` always the
    signed ``webhook-id`` (another header could replay a signed request under a new
    id); else the hook's delivery header."""
    header = hook.spec.delivery_header
    if hook.spec.verify is VerifyScheme.STANDARD_WEBHOOKS:
        header = DEFAULT_DELIVERY_HEADER
    value = headers.get(header, "").strip()
    if not value:
        return None
    if len(value) > MAX_DELIVERY_ID:
        raise InvalidInput(header, f"is longer than {MAX_DELIVERY_ID}")
    return value


def is_json(content_type: str) -> bool:
    """Whether a content type is JSON (``application/json``, ``...+json``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def payload_of(body: bytes, content_type: str) -> Any:
    """A job's payload: the parsed body if it is JSON, else the body as UTF-8 text.
    ``InvalidInput`` for JSON that does not parse, ``UnsupportedBody`` for bytes that are
    not UTF-8."""
    if not body:
        return None
    if is_json(content_type):
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidInput("body", "is not valid JSON (the Content-Type says JSON)") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedBody(
            "the body is neither JSON nor UTF-8 text, so it cannot be a job's payload"
        ) from None


def job_message_id(hook_id: int, delivery_id: str | None, receipt_id: str) -> str:
    """The enqueued job's ``message_id``: a retry never makes a second job."""
    return f"hook:{hook_id}:{delivery_id or receipt_id}"


def received_data(hook: IncomingHook, receipt: NewReceipt) -> dict[str, Any]:
    """The ``hook.received`` event's data."""
    return {
        "hook_id": hook.id,
        "hook_name": hook.spec.name,
        "receipt_id": receipt.id,
        "delivery_id": receipt.delivery_id,
        "task": receipt.task,
        "job_id": None,
        "size": len(receipt.body),
        "ip": receipt.ip,
    }


# -- who sent it --------------------------------------------------------------------


def parse_networks(entries: Iterable[str]) -> list[IpNetwork]:
    """Networks from a setting (``10.0.0.0/8``, ``::1``); ``InvalidInput`` names a bad one."""
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise InvalidInput("trusted_proxies", f"{entry!r} is not a network") from None
    return found


def sender_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IpNetwork]) -> str:
    """The sender's address: the socket peer, unless it is a trusted proxy; then the
    rightmost address of ``X-Forwarded-For`` that is not a trusted proxy, if that is an
    IP address (anything else is a forgery or a mistake: then the peer)."""
    if peer is None:
        return "unknown"
    if not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return _ip_or(hop, peer)
    return peer


def _ip_or(address: str, fallback: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return fallback


def redact_hook_paths(text: str) -> str:
    """``text`` with every hook URL path (``/hooks/<token>``) as ``/hooks/redacted``:
    for log lines, since the token is a credential."""
    return _HOOK_PATH.sub(lambda found: found[1] + REDACTED_HOOK_PATH, text)


def _is_trusted(address: str, trusted: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
