"""Outbound HTTP that cannot be pointed at the inside: the SSRF guard.

:class:`OutboundClient` makes one request at a time with aiohttp and checks the
address it actually connects to, not only the name in the URL: a host name is
resolved by :class:`GuardedResolver`, which passes on only the addresses the
:class:`~conveyor.net.policy.OutboundPolicy` allows, so a name that resolves to a
public address when checked and a private one when connecting (DNS rebinding)
cannot slip through. IP literals, which aiohttp connects to without resolving,
are checked before the request. Redirects are never followed (a 3xx is the
response), proxies and ``.netrc`` from the environment are ignored, every call
has a total timeout, and the response body is read up to a cap.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from conveyor.domain.errors import InvalidInput
from conveyor.net.policy import OutboundPolicy, OutboundRefused, ip_literal

SCHEMES = frozenset({"http", "https"})
DEFAULT_MAX_BODY = 64 * 1024
_CHUNK = 16 * 1024


class OutboundTimeout(TimeoutError):
    """No complete response arrived in time."""


class GuardedResolver(AbstractResolver):
    """Resolves a host name with another resolver, then keeps only the addresses
    the policy allows; raises ``OutboundRefused`` when none is left."""

    def __init__(self, policy: OutboundPolicy, inner: AbstractResolver) -> None:
        self.policy = policy
        self.inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of ``host``, in the inner resolver's order."""
        found = await self.inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refusal: OutboundRefused | None = None
        for result in found:
            try:
                self._check(host, result["host"])
            except OutboundRefused as exc:
                refusal = refusal or exc
            else:
                allowed.append(result)
        if not allowed:
            raise refusal or OutboundRefused(host, "no address found", hint="")
        return allowed

    def _check(self, host: str, resolved: str) -> None:
        address = ip_literal(resolved)
        if address is None:
            raise OutboundRefused(f"{host} at {resolved}", "not an IP address", hint="")
        self.policy.check(host, address)

    async def close(self) -> None:
        """Nothing to release: the inner resolver belongs to whoever made it."""


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    """What came back: the status, the headers, and the body up to the cap."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool
    """The body was longer than the cap; ``body`` holds its first part."""
    charset: str | None
    elapsed: float
    """Seconds from sending the request to reading the (capped) body."""

    def text(self) -> str:
        """The body decoded with its charset (UTF-8 when unknown); bad bytes become U+FFFD."""
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


class OutboundClient:
    """Makes guarded HTTP requests (webhooks, the ``http`` task).

    ``resolver`` answers host names (default: the system's, in a thread); tests
    pass a stub. By default each request uses a connection of its own; with
    ``keep_alive`` the client keeps its connections open for the next request to the
    same host (each was checked when it was made) until :meth:`aclose`.
    """

    def __init__(
        self,
        policy: OutboundPolicy | None = None,
        *,
        resolver: AbstractResolver | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        keep_alive: bool = False,
    ) -> None:
        self.policy = policy or OutboundPolicy()
        self.resolver = resolver
        self.max_body = max_body
        self.keep_alive = keep_alive
        self._session: aiohttp.ClientSession | None = None

    def checked_url(self, url: str) -> URL:
        """``url`` parsed, if its scheme may be called and an IP-literal host is allowed."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise InvalidInput("url", "is not a valid URL") from None
        if parsed.scheme not in SCHEMES:
            raise OutboundRefused(url, "only http and https URLs may be called", hint="")
        if not parsed.host:
            raise InvalidInput("url", "has no host")
        address = ip_literal(parsed.host)
        if address is not None:
            self.policy.check(parsed.host, address)
        return parsed

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        time_limit: float = 30.0,
    ) -> OutboundResponse:
        """Send one request and read the response; never follows a redirect.

        Raises ``InvalidInput`` for a URL that is not one (field ``url``),
        ``OutboundRefused`` for an address the policy refuses,
        ``OutboundTimeout`` after ``time_limit`` seconds in all, ``aiohttp.ClientError`` when
        the connection fails.
        """
        target = self.checked_url(url)
        try:
            if self.keep_alive:
                if self._session is None:
                    self._session = self._new_session()
                return await self._send(self._session, method, target, headers, data, time_limit)
            async with self._new_session() as session:
                return await self._send(session, method, target, headers, data, time_limit)
        except aiohttp.InvalidURL as exc:
            raise InvalidInput("url", f"is not a valid URL ({exc})") from None
        except TimeoutError:
            host = target.host
            raise OutboundTimeout(f"no complete response from {host} in {time_limit:g} s") from None

    async def aclose(self) -> None:
        """Close the connections kept open (``keep_alive``)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _new_session(self) -> aiohttp.ClientSession:
        resolver = GuardedResolver(self.policy, self.resolver or aiohttp.ThreadedResolver())
        connector = aiohttp.TCPConnector(
            resolver=resolver, use_dns_cache=False, force_close=not self.keep_alive
        )
        return aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        target: URL,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        time_limit: float,
    ) -> OutboundResponse:
        began = time.perf_counter()
        async with session.request(
            method,
            target,
            headers=headers,
            data=data,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=time_limit),
        ) as response:
            body, truncated = await _read_capped(response, self.max_body)
            return OutboundResponse(
                status=response.status,
                headers={name.lower(): value for name, value in response.headers.items()},
                body=body,
                truncated=truncated,
                charset=response.charset,
                elapsed=time.perf_counter() - began,
            )


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the body, and whether there was more."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        room = cap - len(body)
        if len(chunk) > room:
            body += chunk[:room]
            return bytes(body), True
        body += chunk
    return bytes(body), False
