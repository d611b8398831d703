"""What the consumer and the publisher share: reconnect delays, waiting on events, and
a broker address fit for logs."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import urlsplit

from aio_pika.abc import AbstractConnection

FIRST_DELAY = 0.5
"""Seconds before the first reconnect; each failure in a row doubles it."""


def reconnect_delay(failures: int, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: up to ``FIRST_DELAY * 2**failures``, at most
    ``cap`` seconds (and never less than a tenth of a second)."""
    ceiling = min(cap, FIRST_DELAY * 2 ** min(failures, 30))
    return max(0.1, rng.uniform(ceiling / 2, ceiling))


def safe_address(url: str) -> str:
    """``amqp://user:secret@host:5672/vhost`` -> ``host:5672/vhost`` (no credentials)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.hostname or '?'}{port}{parts.path or '/'}"
    except ValueError:
        return "(unparsable address)"


async def wait_any(seconds: float, *events: asyncio.Event) -> None:
    """Return when one of ``events`` is set or after ``seconds``."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=max(seconds, 0.0), return_when="FIRST_COMPLETED")
    finally:
        for waiter in waiters:
            waiter.cancel()


def describe_error(exc: BaseException, url: str) -> str:
    """An error's text fit for logs: the broker password, if it shows, masked."""
    text = str(exc) or type(exc).__name__
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    return text


def is_lost(connection: AbstractConnection) -> bool:
    """Whether the connection is gone: closed here, or by the broker or the network
    (a plain connection's ``is_closed`` tells only of the first)."""
    return connection.is_closed or not connection.connected.is_set()
