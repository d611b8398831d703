"""Sending one webhook request: the :class:`Sender` the notifier and the test send use,
and :class:`HttpSender`, which goes through the SSRF guard."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from conveyor.domain.errors import InvalidInput
from conveyor.domain.webhooks import AttemptResult
from conveyor.net.policy import OutboundPolicy, OutboundRefused

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

    from conveyor.net.guard import OutboundClient

RESPONSE_CAP = 2048
"""How much of a receiver's response the delivery log keeps."""


class Sender(Protocol):
    """Posts one delivery and says what came back; never raises for the receiver's faults."""

    async def __call__(
        self, url: str, headers: Mapping[str, str], body: str, time_limit: float
    ) -> AttemptResult:
        """POST ``body`` to ``url`` with ``headers``."""

    async def close(self) -> None:
        """Release what the sender keeps open (connections)."""


class HttpSender:
    """A :class:`Sender` through the SSRF guard (:class:`conveyor.net.guard.OutboundClient`).

    With ``keep_alive`` (the notifier's), connections stay open for the next delivery
    to the same receiver until :meth:`close`; without, each request has its own.
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        resolver: AbstractResolver | None = None,
        *,
        keep_alive: bool = False,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.keep_alive = keep_alive
        self._client: OutboundClient | None = None

    async def __call__(
        self, url: str, headers: Mapping[str, str], body: str, time_limit: float
    ) -> AttemptResult:
        """POST through the guard; a refusal, a timeout or a connection error is the
        attempt's error (it is retried like a bad status)."""
        import aiohttp

        from conveyor.net.guard import OutboundTimeout

        client = self._outbound()
        began = time.perf_counter()
        try:
            response = await client.request(
                "POST", url, headers=headers, data=body.encode(), time_limit=time_limit
            )
        except (OutboundRefused, InvalidInput) as exc:
            return AttemptResult(None, _ms_since(began), error=exc.message)
        except (OutboundTimeout, aiohttp.ClientError, OSError) as exc:
            return AttemptResult(None, _ms_since(began), error=str(exc) or type(exc).__name__)
        return AttemptResult(response.status, round(response.elapsed * 1000), response.text())

    async def close(self) -> None:
        """Close the connections kept open."""
        if self._client is not None:
            await self._client.aclose()

    def _outbound(self) -> OutboundClient:
        # aiohttp loads on first use: the CLI, which imports this module, rarely sends.
        from conveyor.net.guard import OutboundClient

        if self._client is None:
            self._client = OutboundClient(
                self.policy,
                resolver=self.resolver,
                max_body=RESPONSE_CAP,
                keep_alive=self.keep_alive,
            )
        return self._client


def _ms_since(began: float) -> int:
    return round((time.perf_counter() - began) * 1000)
