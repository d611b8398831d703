"""Live events: a WebSocket for API clients and Server-Sent Events for browsers.

Both read the server's one :class:`~conveyor.services.live.Fanout`; the protocol
is described in ``docs/live-events.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import ConveyorError, InvalidInput, PermissionDenied
from conveyor.domain.events import Event
from conveyor.server import Server
from conveyor.services.auth import Unauthenticated
from conveyor.services.live import EndReason, EventFilter, FeedEnded, LiveFeed, event_cursor
from conveyor.web.auth import (
    opened_by_cookie,
    principal_for,
    redact_credentials,
    server_of,
    session_unchanged,
    streaming_reader,
)

log = logging.getLogger("conveyor.web.live")

router = APIRouter(tags=["events"])

UNAUTHENTICATED = 4401
FORBIDDEN = 4403
TOO_SLOW = 4008
INVALID = 4400
GOING_AWAY = 1001
SERVER_ERROR = 1011
REASON_LIMIT = 120
"""A close reason must fit in 123 bytes."""
CLOSE_CODES = {EndReason.TOO_SLOW: TOO_SLOW, EndReason.SHUTDOWN: GOING_AWAY}
SESSION_CHECK_SECONDS = 5.0
"""How often a stream opened by a dashboard session cookie re-checks that session."""


def event_message(event: Event) -> dict[str, Any]:
    """An Event as the live feeds send it."""
    return {
        "type": "event",
        "id": event.id,
        "event": event.type,
        "job_id": event.job_id,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


@router.websocket("/events/ws")
async def events_socket(
    websocket: WebSocket,
    token: str | None = None,
    api_key: str | None = None,
    last_event_id: str | None = None,
) -> None:
    """Events as JSON messages; see ``docs/live-events.md``."""
    redact_credentials(websocket.scope)
    await websocket.accept()  # first, so that a refusal's close code reaches the client
    server: Server = websocket.app.state.server
    bearer = websocket.headers.get("authorization", "").removeprefix("Bearer ").strip()
    try:
        principal = await principal_for(server.auth, api_key or token or bearer or None)
        principal.require(Scope.JOBS_READ)
        cursor = event_cursor(last_event_id)
    except ConveyorError as exc:
        await websocket.close(_refusal_code(exc), exc.message[:REASON_LIMIT])
        return
    await _Session(websocket, server, principal).run(cursor)


def _refusal_code(error: ConveyorError) -> int:
    if isinstance(error, Unauthenticated):
        return UNAUTHENTICATED
    if isinstance(error, PermissionDenied):
        return FORBIDDEN
    return INVALID if isinstance(error, InvalidInput) else SERVER_ERROR


class _Session:
    """One WebSocket client: a receiver, a pump of events, a keepalive; the first to
    finish (disconnect, cut, shutdown) ends the others."""

    def __init__(self, websocket: WebSocket, server: Server, principal: Principal) -> None:
        self.websocket = websocket
        self.server = server
        self.principal = principal
        self.id = secrets.token_hex(8)
        self.last_sent: int | None = None
        self.done = asyncio.Event()
        self.close: tuple[int, str] | None = None
        self.feed: LiveFeed | None = None
        self.pump: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    async def run(self, cursor: int | None) -> None:
        """Serve until the client leaves or the server ends the connection."""
        await self._send({"type": "connected", "connection_id": self.id})
        self._subscribe(EventFilter(), cursor)
        tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._keepalive())]
        try:
            await self.done.wait()
        finally:
            for task in [*tasks, self.pump]:
                if task is not None:
                    task.cancel()
            if self.feed is not None:
                self.feed.close()
        if self.close is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.websocket.close(*self.close), 5.0)

    def _end(self, code: int | None = None, reason: str = "") -> None:
        if not self.done.is_set():
            self.close = None if code is None else (code, reason)
            self.done.set()

    def _subscribe(self, filters: EventFilter, cursor: int | None) -> None:
        if self.pump is not None:
            self.pump.cancel()
        if self.feed is not None:
            self.feed.close()
        self.last_sent = cursor  # where the stream stands: resumed from here
        jobs = self.server.jobs_for(self.principal)
        self.feed = LiveFeed(self.server.live, jobs, filters, self._on_end)
        self.feed.resume_after(cursor)
        self.pump = asyncio.create_task(self._pump(self.feed))

    def _on_end(self, reason: EndReason) -> None:
        self._end(CLOSE_CODES[reason], reason.value)

    async def _pump(self, feed: LiveFeed) -> None:
        try:
            while True:
                event = await feed.next()
                if event is not None:
                    await self._send(event_message(event), event.id)
        except FeedEnded:
            return  # _on_end has ended the session
        except Exception:
            log.exception("live events: connection %s failed", self.id)
            self._end(SERVER_ERROR, "server error")

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(self.server.settings.live_keepalive_seconds)
            await self._send({"type": "keepalive"})

    async def _receive(self) -> None:
        try:
            while True:
                await self._answer(await self.websocket.receive_text())
        except WebSocketDisconnect:
            self._end()

    async def _answer(self, text: str) -> None:
        try:
            message = json.loads(text)
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "ping":
                await self._send({"type": "pong"})
            elif kind == "register":
                await self._register(message)
            else:
                raise InvalidInput("type", "must be 'register' or 'ping'")
        except (ValueError, InvalidInput) as exc:
            await self._send({"type": "error", "detail": str(exc)})

    async def _register(self, message: dict[str, Any]) -> None:
        filters = EventFilter.from_mapping(message)
        cursor = event_cursor(message.get("last_event_id"))
        async with self._send_lock:  # the pump is not halfway through a send
            self._subscribe(filters, self.last_sent if cursor is None else cursor)
            # Sent before the new pump can send: every event after it passed the new filters.
            await self.websocket.send_text(json.dumps({"type": "registered"}))

    async def _send(self, message: dict[str, Any], event_id: int | None = None) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message))
            if event_id is not None:
                self.last_sent = event_id


@router.get("/events/stream", include_in_schema=False)
async def events_stream(
    request: Request,
    principal: Annotated[Principal, Depends(streaming_reader)],
    queue: str | None = None,
    task: str | None = None,
    job_id: int | None = None,
    types: Annotated[str | None, Query(description="Event types, comma-separated")] = None,
    last_event_id: str | None = None,
    last_event_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Events as Server-Sent Events (``text/event-stream``); resumes after
    ``Last-Event-ID``. Not in the OpenAPI schema: it never ends."""
    server = server_of(request)
    filters = EventFilter.from_mapping(
        {"queue": queue, "task": task, "job_id": job_id, "types": types}
    )
    cursor = event_cursor(last_event_header or last_event_id)  # before it subscribes
    feed = LiveFeed(server.live, server.jobs_for(principal), filters)
    feed.resume_after(cursor)
    watch = _SessionWatch(request, principal) if opened_by_cookie(request) else None
    return StreamingResponse(
        _sse(feed, server.settings.live_keepalive_seconds, watch),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class _SessionWatch:
    """Re-checks, every :data:`SESSION_CHECK_SECONDS`, that the session cookie which
    opened a stream still speaks for the same principal (not signed out, removed or
    given another role)."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self.request = request
        self.principal = principal
        self.every = SESSION_CHECK_SECONDS
        self._due = time.monotonic() + self.every

    async def ended(self) -> bool:
        """Whether the session is over or changed (checked only when due)."""
        if time.monotonic() < self._due:
            return False
        self._due = time.monotonic() + self.every
        return not await session_unchanged(self.request, self.principal)


async def _sse(
    feed: LiveFeed, keepalive: float, watch: _SessionWatch | None = None
) -> AsyncIterator[str]:
    """The feed as SSE frames, with a comment when idle; ends when the server ends it
    or, for a cookie's stream, when its session ends or changes (then keepalives come
    at least as often as the session is checked). A reconnecting browser gets its
    current rights."""
    wait = keepalive if watch is None else min(keepalive, watch.every)
    try:
        yield ": connected\n\n"
        while True:
            event = await feed.next(wait)
            if watch is not None and await watch.ended():
                return
            if event is None:
                yield ": keepalive\n\n"
                continue
            data = json.dumps(event_message(event))
            yield f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"
    except FeedEnded:
        return
    finally:
        feed.close()
