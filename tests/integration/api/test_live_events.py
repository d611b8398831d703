"""Live events over a real uvicorn server: the WebSocket (with the ``websockets``
client) and Server-Sent Events (with httpx), on both stores, as the personas."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from conveyor.domain.events import Event
from conveyor.server import Server
from conveyor.services.live import EndReason, EventFilter, FeedEnded, LiveFeed
from tests.integration.api.conftest import Api, make_personas, server_settings
from tests.integration.served import served

pytestmark = pytest.mark.anyio

WAIT = 10.0


@dataclass
class Live:
    """A served API with personas, and how to reach its live feeds."""

    api: Api
    port: int

    def token(self, who: str) -> str:
        """``who``'s access token."""
        return self.api.headers[who]["Authorization"].removeprefix("Bearer ")

    def connect(self, query: str = "", **kwargs: Any) -> Any:
        """A WebSocket client of the feed (``async with``)."""
        url = f"ws://127.0.0.1:{self.port}/api/v1/events/ws?{query}"
        return connect(url, open_timeout=WAIT, **kwargs)

    async def enqueue(self, who: str, queue: str = "q", **fields: Any) -> int:
        """A new job's id, created by ``who``."""
        body = {"task": "t", "queue": queue, **fields}
        response = await self.api.call("POST", "/api/v1/jobs", who, json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def stored(self, who: str, after: int) -> list[dict[str, Any]]:
        """The events ``who`` may read after ``after``, as the REST API lists them."""
        response = await self.api.call("GET", "/api/v1/events", who, params={"after": after})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


async def _serve(server: Server) -> AsyncIterator[Live]:
    async with (
        served(server) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        yield Live(await make_personas(Api(client, server)), port)


@pytest.fixture
async def live(migrated_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Live]:
    """A real server on a free port, polling fast; an indirect parameter sets
    ``live_max_queued``."""
    max_queued = getattr(request, "param", 1_000)
    settings = server_settings(
        migrated_url,
        live_poll_interval=0.02,
        live_keepalive_seconds=0.3,
        live_max_queued=max_queued,
    )
    server = Server(settings)
    await server.start()
    try:
        async for live_server in _serve(server):
            yield live_server
    finally:
        await server.stop()


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next message that is not a keepalive, within :data:`WAIT` seconds in all
    (keepalives do not extend the wait)."""
    async with asyncio.timeout(WAIT):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] != "keepalive":
                return message


async def events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next ``count`` event messages."""
    found = []
    while len(found) < count:
        message = await receive(ws)
        assert message["type"] == "event", message
        found.append(message)
    return found


async def quiet(ws: ClientConnection, seconds: float = 0.4) -> None:
    """Nothing but keepalives arrives for ``seconds``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            message = await receive(ws)
            raise AssertionError(f"unexpected message {message}")


async def until_closed(ws: ClientConnection) -> ConnectionClosed:
    """How the server closed ``ws``, after whatever it still sent."""
    try:
        while True:
            await receive(ws)
    except ConnectionClosed as closed:
        return closed


async def until_ended(feed: LiveFeed) -> FeedEnded:
    """How the server ended ``feed``, after the events it had queued."""
    try:
        while True:
            await feed.next(WAIT)
    except FeedEnded as ended:
        return ended


async def register(ws: ClientConnection, **fields: Any) -> None:
    """Send a ``register`` and wait for the server's ``registered``: from there on the
    new filters apply."""
    await ws.send(json.dumps({"type": "register", **fields}))
    assert await receive(ws) == {"type": "registered"}


async def connected(ws: ClientConnection) -> str:
    """The connection id of the ``connected`` greeting."""
    message = await receive(ws)
    assert message["type"] == "connected"
    return str(message["connection_id"])


async def test_connects_and_streams_a_new_job_event(live: Live) -> None:
    async with live.connect(f"token={live.token('alice')}") as ws:
        assert await connected(ws)
        job_id = await live.enqueue("alice")
        [event] = await events(ws, 1)
    assert event["event"] == "job.enqueued"
    assert event["job_id"] == job_id
    assert event["data"]["queue"] == "q"
    assert event["created_at"]


async def test_answers_ping_and_sends_keepalives(live: Live) -> None:
    headers = live.api.headers["alice"]
    async with live.connect(additional_headers=headers) as ws:
        await connected(ws)
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive(ws) == {"type": "pong"}
        message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert message == {"type": "keepalive"}


@pytest.mark.parametrize("query", ["", "token=not-a-token", "api_key=cvk_nope"])
async def test_refuses_a_missing_or_bad_credential_with_4401(live: Live, query: str) -> None:
    async with live.connect(query) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason


async def test_refuses_a_key_that_may_not_read_jobs_with_4403(live: Live) -> None:
    body = {"name": "worker-only", "scopes": ["jobs:work"]}
    response = await live.api.call("POST", "/api/v1/api-keys", "alice", json=body)
    assert response.status_code == 201, response.text
    async with live.connect(f"api_key={response.json()['key']}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_bob_never_sees_acme_events(live: Live) -> None:
    async with (
        live.connect(f"token={live.token('bob')}") as bob,
        live.connect(f"token={live.token('alice')}") as alice,
    ):
        await connected(bob)
        await connected(alice)
        acme_job = await live.enqueue("alice")
        globex_job = await live.enqueue("bob")
        assert [e["job_id"] for e in await events(bob, 1)] == [globex_job]
        assert [e["job_id"] for e in await events(alice, 1)] == [acme_job]
        await quiet(bob)


async def test_an_agent_sees_only_its_assigned_jobs(live: Live) -> None:
    async with live.connect(f"token={live.token('carl')}") as carl:
        await connected(carl)
        await live.enqueue("alice")
        mine = await live.enqueue("alice", assignee="carl@acme.test")
        await live.api.call("POST", "/api/v1/queues/q/pause", "alice")
        assert [e["job_id"] for e in await events(carl, 1)] == [mine]
        await quiet(carl)


async def test_register_filters_by_queue_task_job_and_type(live: Live) -> None:
    async with live.connect(f"token={live.token('alice')}") as ws:
        await connected(ws)
        await register(ws, queue="emails", types=["job.enqueued"])
        await live.enqueue("alice", queue="other")
        wanted = await live.enqueue("alice", queue="emails")
        await live.api.call("POST", f"/api/v1/jobs/{wanted}/cancel", "alice")
        assert [e["job_id"] for e in await events(ws, 1)] == [wanted]
        await quiet(ws)
        # Without last_event_id the new filters apply from the last event sent, so
        # the cancellation the old filters held back comes now.
        await register(ws, job_id=wanted, task="t")
        await live.api.call("POST", f"/api/v1/jobs/{wanted}/retry", "alice")
        await live.enqueue("alice", queue="emails")
        seen = await events(ws, 2)
        await quiet(ws)
    assert [(e["event"], e["job_id"]) for e in seen] == [
        ("job.cancelled", wanted),
        ("job.retried", wanted),
    ]


async def test_reports_a_bad_message_and_keeps_the_connection(live: Live) -> None:
    async with live.connect(f"token={live.token('alice')}") as ws:
        await connected(ws)
        await ws.send(json.dumps({"type": "register", "job_id": "seven"}))
        assert (await receive(ws))["type"] == "error"
        await ws.send("not json")
        assert (await receive(ws))["type"] == "error"
        job_id = await live.enqueue("alice")
        assert [e["job_id"] for e in await events(ws, 1)] == [job_id]


async def test_resumes_after_the_last_event_with_nothing_missed_or_repeated(
    live: Live,
) -> None:
    async with live.connect(f"token={live.token('alice')}") as ws:
        await connected(ws)
        await live.enqueue("alice")
        [seen] = await events(ws, 1)
    for _ in range(5):
        await live.enqueue("alice")
    missed = await live.stored("alice", seen["id"])
    assert len(missed) == 5
    async with live.connect(f"token={live.token('alice')}&last_event_id={seen['id']}") as ws:
        await connected(ws)
        replayed = await events(ws, 5)
        latest = await live.enqueue("alice")
        [after] = await events(ws, 1)
        await quiet(ws)
    assert [e["id"] for e in replayed] == [e["id"] for e in missed]
    assert after["job_id"] == latest
    ids = [e["id"] for e in [*replayed, after]]
    assert ids == sorted(set(ids))


async def test_register_replays_from_its_last_event_id(live: Live) -> None:
    first = await live.enqueue("alice")
    second = await live.enqueue("alice")
    [before, *_] = await live.stored("alice", 0)
    async with live.connect(f"token={live.token('alice')}") as ws:
        await connected(ws)
        await register(ws, last_event_id=0)
        assert [e["job_id"] for e in await events(ws, 2)] == [first, second]
        await register(ws, last_event_id=before["id"])
        assert [e["job_id"] for e in await events(ws, 1)] == [second]
        await quiet(ws)


@pytest.mark.parametrize("live", [3], indirect=True)
async def test_a_client_that_falls_behind_is_cut_and_others_keep_receiving(
    live: Live,
) -> None:
    async with (
        live.connect(f"token={live.token('alice')}") as alice,
        live.connect(f"token={live.token('bob')}") as bob,
    ):
        await connected(alice)
        await connected(bob)
        jobs = [{"task": "t", "queue": "q"}] * 10
        response = await live.api.call("POST", "/api/v1/jobs/batch", "alice", json={"jobs": jobs})
        assert response.status_code == 201, response.text
        closed = await until_closed(alice)
        globex_job = await live.enqueue("bob")
        assert [e["job_id"] for e in await events(bob, 1)] == [globex_job]
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4008
    assert "too slow" in closed.rcvd.reason


@pytest.mark.parametrize("live", [3], indirect=True)
async def test_a_feed_that_is_not_read_is_cut_without_holding_back_another(
    live: Live,
) -> None:
    server = live.api.server
    jobs = server.jobs_for(await server.auth.principal_from_token(live.token("alice")))
    ended: list[EndReason] = []
    idle = LiveFeed(server.live, jobs, EventFilter(), ended.append)
    reader = LiveFeed(server.live, jobs, EventFilter())
    received: list[Event] = []
    try:
        for _ in range(server.settings.live_max_queued + 1):
            await live.enqueue("alice")
            event = await reader.next(WAIT)
            assert event is not None
            received.append(event)
        assert ended == [EndReason.TOO_SLOW]
        assert (await until_ended(idle)).reason is EndReason.TOO_SLOW
    finally:
        idle.close()
        reader.close()
    assert len(received) == server.settings.live_max_queued + 1


async def _sse_events(live: Live, count: int, **headers: str) -> list[dict[str, str]]:
    url = f"/api/v1/events/stream?token={live.token('alice')}"
    found: list[dict[str, str]] = []
    frame: dict[str, str] = {}
    async with live.api.client.stream("GET", url, headers=headers, timeout=WAIT) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                frame[name] = value
            elif not line and frame:
                found.append(frame)
                frame = {}
            if len(found) == count:
                return found
    return found


async def test_sse_streams_events_and_resumes_after_last_event_id(live: Live) -> None:
    first = await live.enqueue("alice")
    second = await live.enqueue("alice")
    [one, two] = await _sse_events(live, 2, **{"Last-Event-ID": "0"})
    assert json.loads(one["data"])["job_id"] == first
    assert one["event"] == "job.enqueued"
    assert json.loads(two["data"])["job_id"] == second
    [resumed] = await _sse_events(live, 1, **{"Last-Event-ID": one["id"]})
    assert resumed["id"] == two["id"]


async def test_sse_needs_a_credential(live: Live) -> None:
    response = await live.api.client.get("/api/v1/events/stream")
    assert response.status_code == 401
    response = await live.api.client.get(
        "/api/v1/events/stream", headers=live.api.headers["bob"], params={"job_id": "x"}
    )
    assert response.status_code == 422


async def test_the_access_log_never_shows_a_query_credential(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    token = live.token("alice")
    with caplog.at_level(logging.INFO):
        async with live.connect(f"token={token}") as ws:
            await connected(ws)
        await _sse_events(live, 0)
    served = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("uvicorn"))
    assert "events/ws?token=redacted" in served
    assert "events/stream?token=redacted" in served
    assert token not in served


async def test_stopping_the_server_ends_every_stream(live: Live) -> None:
    url = f"/api/v1/events/stream?token={live.token('alice')}"
    async with (
        live.connect(f"token={live.token('alice')}") as ws,
        live.api.client.stream("GET", url, timeout=WAIT) as response,
    ):
        await connected(ws)
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        live.api.server.live.end_all(EndReason.SHUTDOWN)
        closed = await until_closed(ws)
        assert [line async for line in lines if line and not line.startswith(":")] == []
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1001
