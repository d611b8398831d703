"""How fast events reach live clients and webhook receivers:
``python -m benchmarks.events [--quick] [--poll SECONDS]``.

For each store (SQLite with ``synchronous=FULL``, PostgreSQL), a real ``conveyor
serve`` on a fresh database (the same command as the API benchmark). Jobs are
created through ``POST /api/v1/jobs/batch`` with this process's API key; each makes
one event, and no worker runs them, so the events counted are exactly those.

- **WebSocket**: ``clients`` connections to ``/api/v1/events/ws`` (in this process).
  *Burst*: ``burst`` events made as fast as the API takes batches of 100; the
  throughput is the messages delivered to all clients (events x clients) over the time
  from the first batch sent to the last message received. *Steady*: ``rate`` events a
  second for ``seconds``; latency = receive time - the event's ``created_at`` (one
  machine, one clock), p50/p99 over every message of every client.
- **Webhook**: one Subscription to a receiver in this process (aiohttp, answers 204,
  no signature check); the same burst and steady runs.

``--poll`` sets ``live_poll_interval`` and ``webhook_interval`` (defaults 0.5 s and
1 s: the server looks for new events that often, which bounds the latency from
below). Medians over the repetitions go to ``benchmarks/results/events.json``
(``events-quick.json`` with ``--quick``) and are printed as Markdown; see
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect

from benchmarks import report
from benchmarks.api_server import ADMIN_EMAIL, ADMIN_PASSWORD, RunningServer, api_server
from benchmarks.config import RESULTS_DIR
from benchmarks.machine import describe
from benchmarks.scenarios import percentile

BATCH = 100
STORES = ("sqlite", "postgres")
DRAIN_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes of one run."""

    clients: int
    burst: int
    rate: int
    seconds: float
    repeats: int
    poll: float | None


@dataclass
class Inbox:
    """What the receivers got: per message, the receive time and the event's age."""

    expected: int = 0
    received: int = 0
    duplicates: int = 0
    seen: set[tuple[int, int]] = field(default_factory=set)
    latencies_ms: list[float] = field(default_factory=list)
    last_at: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self, expected: int) -> None:
        """Start counting a new phase that expects ``expected`` messages in all."""
        self.expected, self.received, self.latencies_ms = expected, 0, []
        self.seen = set()
        self.done = asyncio.Event()

    def got(self, receiver: int, event_id: int, created_at: str) -> None:
        """One message arrived at ``receiver``: record its latency (once per event)."""
        now = time.time()
        if (receiver, event_id) in self.seen:
            self.duplicates += 1
            return
        self.seen.add((receiver, event_id))
        self.latencies_ms.append((now - datetime.fromisoformat(created_at).timestamp()) * 1000)
        self.received += 1
        self.last_at = now
        if self.received >= self.expected:
            self.done.set()


async def _token(client: httpx.AsyncClient) -> str:
    login = await client.post(
        "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    login.raise_for_status()
    return str(login.json()["access_token"])


async def _make_events(client: httpx.AsyncClient, key: str, count: int) -> None:
    """``count`` jobs (one event each), in batches of up to ``BATCH``."""
    while count > 0:
        size = min(BATCH, count)
        jobs = [{"task": "bench.event", "queue": "bench-events"} for _ in range(size)]
        response = await client.post(
            "/api/v1/jobs/batch", json={"jobs": jobs}, headers={"X-API-Key": key}
        )
        response.raise_for_status()
        count -= size


async def _steady(client: httpx.AsyncClient, key: str, rate: int, seconds: float) -> int:
    """``rate`` events a second for ``seconds`` (one request each, evenly spaced)."""
    total = int(rate * seconds)
    start = time.perf_counter()
    for index in range(total):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await _make_events(client, key, 1)
    return total


async def _listen(socket: ClientConnection, number: int, inbox: Inbox) -> None:
    async for raw in socket:
        message = json.loads(raw)
        if message.get("type") == "event":
            inbox.got(number, message["id"], message["created_at"])


@contextlib.asynccontextmanager
async def _websockets(
    server: RunningServer, token: str, count: int, inbox: Inbox
) -> AsyncIterator[None]:
    url = server.base_url.replace("http://", "ws://") + f"/api/v1/events/ws?token={token}"
    sockets = [await connect(url, max_queue=None) for _ in range(count)]
    for socket in sockets:
        hello = json.loads(await socket.recv())
        assert hello["type"] == "connected", hello
    listeners = [asyncio.create_task(_listen(s, n, inbox)) for n, s in enumerate(sockets)]
    try:
        yield
    finally:
        for socket in sockets:
            await socket.close()
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)


@contextlib.asynccontextmanager
async def _receiver(client: httpx.AsyncClient, token: str, inbox: Inbox) -> AsyncIterator[None]:
    async def handle(request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        inbox.got(0, event["id"], event["created_at"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    created = await client.post(
        "/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:{port}/hook", "event_types": ["job.*"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    created.raise_for_status()
    try:
        yield
    finally:
        await runner.cleanup()


async def _phase(
    inbox: Inbox, fanout: int, produce: Callable[[], Any], events: int
) -> dict[str, float]:
    inbox.reset(events * fanout)
    inbox.duplicates = 0
    began = time.time()
    await produce()
    try:
        await asyncio.wait_for(inbox.done.wait(), DRAIN_TIMEOUT)
    except TimeoutError:
        raise TimeoutError(
            f"{inbox.received} of {inbox.expected} messages after {DRAIN_TIMEOUT:.0f} s"
        ) from None
    elapsed = inbox.last_at - began
    return {
        "per_s": inbox.received / elapsed,
        "p50_ms": percentile(inbox.latencies_ms, 0.50),
        "p99_ms": percentile(inbox.latencies_ms, 0.99),
        "duplicates": inbox.duplicates,
    }


async def _channel(
    client: httpx.AsyncClient, key: str, inbox: Inbox, fanout: int, plan: Plan
) -> dict[str, float]:
    burst = await _phase(inbox, fanout, lambda: _make_events(client, key, plan.burst), plan.burst)
    steady_events = int(plan.rate * plan.seconds)
    steady = await _phase(
        inbox, fanout, lambda: _steady(client, key, plan.rate, plan.seconds), steady_events
    )
    return {
        "burst_per_s": burst["per_s"],
        "burst_p50_ms": burst["p50_ms"],
        "burst_p99_ms": burst["p99_ms"],
        "duplicates": burst["duplicates"] + steady["duplicates"],
        "steady_p50_ms": steady["p50_ms"],
        "steady_p99_ms": steady["p99_ms"],
    }


def _env(poll: float | None) -> dict[str, str]:
    env = {"CONVEYOR_HTTP_ALLOW": "127.0.0.1", "CONVEYOR_LIVE_MAX_QUEUED": "100000"}
    if poll is not None:
        env |= {"CONVEYOR_LIVE_POLL_INTERVAL": str(poll), "CONVEYOR_WEBHOOK_INTERVAL": str(poll)}
    return env


async def run_once(store: str, plan: Plan) -> dict[str, dict[str, float]]:
    """One repetition on ``store``: the WebSocket channel, then the webhook channel."""
    async with (
        api_server(store, _env(plan.poll)) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=60.0) as client,
    ):
        token = await _token(client)
        inbox = Inbox()
        cpu = time.process_time()
        async with _websockets(server, token, plan.clients, inbox):
            websocket = await _channel(client, server.api_key, inbox, plan.clients, plan)
        websocket["generator_cpu_s"] = time.process_time() - cpu
        async with _receiver(client, token, inbox):
            webhook = await _channel(client, server.api_key, inbox, 1, plan)
    return {f"{store}-websocket": websocket, f"{store}-webhook": webhook}


def _markdown(summary: dict[str, dict[str, float]], plan: Plan) -> str:
    lines = [
        f"{plan.clients} WebSocket clients; burst of {plan.burst} events; steady "
        f"{plan.rate} events/s for {plan.seconds:.0f} s; poll "
        f"{'default' if plan.poll is None else f'{plan.poll} s'}; medians of {plan.repeats}.",
        "",
        "| store, channel | burst messages/s | burst p50 / p99 ms | steady p50 / p99 ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, m in summary.items():
        lines.append(
            f"| {name} | {m['burst_per_s']:,.0f} | {m['burst_p50_ms']:,.0f} / "
            f"{m['burst_p99_ms']:,.0f} | {m['steady_p50_ms']:,.0f} / {m['steady_p99_ms']:,.0f} |"
        )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> None:
    """Run every store ``repeats`` times; write the medians and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--poll", type=float, help="live and webhook poll interval (s)")
    parser.add_argument("--only", choices=STORES)
    args = parser.parse_args(argv)
    if args.quick:
        plan = Plan(clients=20, burst=300, rate=20, seconds=3, repeats=1, poll=args.poll)
    else:
        plan = Plan(clients=100, burst=2000, rate=50, seconds=10, repeats=3, poll=args.poll)
    runs: dict[str, dict[str, list[Any]]] = {}
    for repeat in range(plan.repeats):
        for store in [args.only] if args.only else STORES:
            print(f"run {repeat + 1}/{plan.repeats}: {store}", file=sys.stderr)
            for name, metrics in (await run_once(store, plan)).items():
                for metric, value in metrics.items():
                    runs.setdefault(name, {}).setdefault(metric, []).append(value)
    summary = {
        name: {metric: statistics.median(values) for metric, values in metrics.items()}
        for name, metrics in runs.items()
    }
    suffix = "-quick" if args.quick else ("" if args.poll is None else f"-poll{args.poll}")
    result = {
        "plan": asdict(plan),
        "machine": await describe(),
        "runs": runs,
        "summary": summary,
        "spread": {
            name: {m: max(v) - min(v) for m, v in metrics.items() if len(v) > 1}
            for name, metrics in runs.items()
        },
    }
    report.write_json(result, RESULTS_DIR / f"events{suffix}.json")
    print(_markdown(summary, plan))


if __name__ == "__main__":
    asyncio.run(main())
