"""A minimal HTTP/1.1 keep-alive client for the API benchmark's load generator.

httpx costs about 0.6 ms of CPU per request here, more than the server's own work
for a single enqueue, and the generator shares the machine's two cores with the
server and PostgreSQL. This client does only what the benchmark needs: one
connection, requests built once as bytes, answers read by ``Content-Length`` (or
chunked), so the cores measure the server rather than the generator. It speaks
to 127.0.0.1 only and is not a general HTTP client.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit


class RawHttpError(Exception):
    """The connection failed or the answer could not be read."""


@dataclass(frozen=True, slots=True)
class RawResponse:
    """The parts of an answer the load generator looks at."""

    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        """The body as text (for failure messages)."""
        return self.body.decode("utf-8", "replace")


class RawClient:
    """One keep-alive connection to ``base_url`` sending requests with fixed headers."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need host and port in {base_url!r}")
        self.host, self.port = parts.hostname, parts.port
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._requests: dict[tuple[str, str, bytes | None], bytes] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection, if open."""
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, *, content: bytes | None = None) -> RawResponse:
        """Send one request and read its whole answer (reconnecting once if the server
        closed an idle connection)."""
        message = self._message(method, path, content)
        for attempt in (1, 2):
            reader, writer = await self._connection()
            try:
                writer.write(message)
                return await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self.close()
                if attempt == 2:
                    raise RawHttpError(f"{type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def _message(self, method: str, path: str, content: bytes | None) -> bytes:
        key = (method, path, content)
        message = self._requests.get(key)
        if message is None:
            body = content or b""
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._headers}"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            message = self._requests[key] = head.encode("latin-1") + body
        return message

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return RawResponse(status, await reader.readexactly(int(headers["content-length"])))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return RawResponse(status, await _read_chunks(reader))
    raise RawHttpError(f"an answer without Content-Length or chunks: {status_line}")


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
