"""What an incoming message becomes: a job's payload and headers, or a dead letter with
its reason. Pure: no broker, no store (unit-tested on plain values)."""

from __future__ import annotations

import codecs
import json
import zlib
from dataclasses import dataclass
from typing import Any

from conveyor.domain.jobs import MAX_PAYLOAD_BYTES

DEFAULT_CHARSET = "utf-8"
MAX_MESSAGE_ID = 255
MAX_BODY = MAX_PAYLOAD_BYTES
"""The largest body accepted, as sent and once inflated: a job's payload limit."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that becomes a job: its payload and the headers the job keeps."""

    payload: Any
    message_id: str
    content_type: str
    content_encoding: str


@dataclass(frozen=True, slots=True)
class Refused:
    """A message no job can be made of; ``reason`` goes with its dead letter."""

    reason: str


def read_message(
    body: bytes, content_type: str | None, content_encoding: str | None, message_id: str | None
) -> Accepted | Refused:
    """Decide what a message becomes. JSON (``application/json`` or ``*+json``) becomes
    its parsed value, ``text/*`` the decoded string; anything else, a missing
    ``message_id`` or a body that does not decode is refused."""
    if not message_id:
        return Refused("message_id is required (it is the job's idempotency key)")
    if len(message_id) > MAX_MESSAGE_ID:
        return Refused(f"message_id is longer than {MAX_MESSAGE_ID} characters")
    if not content_type:
        return Refused("content_type is required (application/json or text/*)")
    media, charset = _media_type(content_type)
    is_json = media == "application/json" or media.endswith("+json")
    if not is_json and not media.startswith("text/"):
        return Refused(f"content_type {media!r} is not accepted (application/json or text/*)")
    if len(body) > MAX_BODY:
        return Refused(f"body is larger than {MAX_BODY} bytes (the job payload limit)")
    try:
        text = _decode(body, content_encoding, charset)
    except ValueError as exc:
        return Refused(str(exc))
    payload: Any = text
    if is_json:
        try:
            payload = json.loads(text)
        except ValueError as exc:
            return Refused(f"body is not valid JSON: {exc}")
        except RecursionError:
            return Refused("body is JSON nested too deeply")
    return Accepted(payload, message_id, content_type, content_encoding or DEFAULT_CHARSET)


def _media_type(content_type: str) -> tuple[str, str | None]:
    """``application/json; charset=latin-1`` -> ``("application/json", "latin-1")``."""
    media, *parameters = content_type.split(";")
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media.strip().lower(), charset


def _decode(body: bytes, content_encoding: str | None, charset: str | None) -> str:
    """The body as text: inflated for ``gzip``/``deflate``, else ``content_encoding``
    names its character set (the charset parameter, else UTF-8)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "deflate"):
        body = _inflate(body, encoding)
        encoding = ""
    name = encoding or charset or DEFAULT_CHARSET
    try:
        known = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"content_encoding {name!r} is not a known encoding") from None
    if not getattr(known, "_is_text_encoding", True):
        raise ValueError(f"content_encoding {name!r} is not a character set")
    try:
        return body.decode(name)
    except UnicodeDecodeError as exc:
        raise ValueError(f"body does not decode as {name}: {exc.reason}") from None
    except LookupError:  # a codec that exists but cannot decode bytes to text
        raise ValueError(f"content_encoding {name!r} is not a character set") from None


def _inflate(body: bytes, encoding: str) -> bytes:
    window = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(window)
    try:
        inflated = inflater.decompress(body, MAX_BODY)
    except zlib.error as exc:
        raise ValueError(f"body does not inflate as {encoding}: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"body inflates to more than {MAX_BODY} bytes (the job payload limit)")
    return inflated
