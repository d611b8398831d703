"""The API benchmark's load generator: N client tasks on keep-alive connections, one process.

Every client task owns one ``httpx.AsyncClient`` with one keep-alive connection
(N connections in all), takes the next request number from a shared iterator,
sends the request, waits for the whole answer and records its latency, until the
requests run out. Requests/s is completed requests over the wall time of the lot.

Two things keep the generator's own cost down, since it shares the cores with the
server:

- one client per task rather than one client with a pool of N connections: with
  one pool of 50, httpcore's per-request work grows with the connections and idle
  ones expire (2-4x fewer requests/s here, and an occasional ``ReadError`` when a
  connection the server closed after 5 s idle is reused); ``shared_pool=True``
  measures that way;
- ``sniffio`` marked absent in this process, so httpcore's ``import sniffio`` on
  every request fails at once instead of searching ``sys.path`` each time (it is
  not installed; the server process is not affected).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from benchmarks.api_server import RunningServer
from benchmarks.cpu import CpuMark, cores_busy
from benchmarks.raw_http import RawClient, RawHttpError

sys.modules.setdefault("sniffio", None)  # type: ignore[assignment]  # see the docstring

NOOP_TASK = "bench.noop"
MAX_FAILURES_SHOWN = 5


class LoadError(RuntimeError):
    """Some requests did not get the expected answer; the message counts and shows them."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One kind of request, sent again and again, and the status it must get.

    The body is encoded once, up front, so the generator spends no time on JSON.
    """

    mode: str
    method: str
    path: str
    body: bytes | None
    jobs_per_request: int
    expected_status: int


def health_check() -> Workload:
    """``GET /healthz``: the HTTP stack's ceiling (no database, no authentication)."""
    return Workload("healthz", "GET", "/healthz", None, 0, 200)


def single_job() -> Workload:
    """``POST /api/v1/jobs`` with one no-op job."""
    body = json.dumps({"task": NOOP_TASK, "payload": {}}).encode()
    return Workload("single", "POST", "/api/v1/jobs", body, 1, 201)


def job_batch(size: int) -> Workload:
    """``POST /api/v1/jobs/batch`` with ``size`` no-op jobs."""
    jobs = [{"task": NOOP_TASK, "payload": {}} for _ in range(size)]
    body = json.dumps({"jobs": jobs}).encode()
    return Workload("batch", "POST", "/api/v1/jobs/batch", body, size, 201)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One measured load: throughput, latency and the cores each party kept busy."""

    mode: str
    requests: int
    jobs: int
    seconds: float
    requests_per_second: float
    jobs_per_second: float
    p50_ms: float
    p99_ms: float
    server_cores: float | None
    generator_cores: float | None
    postgres_cores: float | None
    machine_cores: float | None
    server_cpu_ms_per_request: float | None

    def as_dict(self) -> dict[str, Any]:
        """The result as plain values (for JSON)."""
        return asdict(self)


@dataclass(slots=True)
class _Tally:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def nearest_rank(ordered: list[float], percent: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


class LoadClient(Protocol):
    """What a client task needs of its HTTP client (httpx's or :mod:`raw_http`'s)."""

    async def request(self, method: str, path: str, *, content: bytes | None = None) -> Answer:
        """Send one request; its answer."""
        ...


class Answer(Protocol):
    """What the generator reads of an answer."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def text(self) -> str:
        """The body as text."""
        ...


CLIENT_KINDS = ("httpx", "raw")


@contextlib.asynccontextmanager
async def open_clients(
    base_url: str, api_key: str, concurrency: int, shared_pool: bool = False, kind: str = "httpx"
) -> AsyncIterator[list[LoadClient]]:
    """One client per task, each with one keep-alive connection (or one shared httpx
    pool); ``kind`` ``raw`` uses :class:`~benchmarks.raw_http.RawClient`."""
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    if kind == "raw":
        async with contextlib.AsyncExitStack() as stack:
            raw: list[LoadClient] = []
            for _ in range(concurrency):
                raw.append(await stack.enter_async_context(RawClient(base_url, headers)))
            yield raw
        return
    per_client = concurrency if shared_pool else 1
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    async with contextlib.AsyncExitStack() as stack:
        count = 1 if shared_pool else concurrency
        clients: list[LoadClient] = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60)
            )
            for _ in range(count)
        ]
        yield clients * concurrency if shared_pool else clients


async def _client_task(
    client: LoadClient,
    workload: Workload,
    tickets: Iterator[int],
    tally: _Tally,
    pace: float | None,
) -> None:
    begun = time.perf_counter()
    for ticket in tickets:
        started = time.perf_counter()
        if pace is not None:
            # Request ``ticket`` is due at ticket / pace seconds; its latency counts from
            # then, so a slow answer that delays the next requests is not hidden.
            started = begun + ticket / pace
            if started > time.perf_counter():
                await asyncio.sleep(started - time.perf_counter())
        try:
            response = await client.request(workload.method, workload.path, content=workload.body)
        except (httpx.HTTPError, RawHttpError) as exc:
            tally.failures.append(f"{type(exc).__name__}: {exc}")
            continue
        tally.latencies.append(time.perf_counter() - started)
        if response.status_code != workload.expected_status:
            tally.failures.append(f"HTTP {response.status_code}: {response.text[:300]}")


async def _drive(
    clients: list[LoadClient], workload: Workload, requests: int, pace: float | None = None
) -> _Tally:
    """Send ``requests`` requests, one task per client, until they run out: as fast as
    the answers come, or ``pace`` requests per second in all."""
    tickets = iter(range(requests))  # shared: each task takes the next number
    tally = _Tally()
    await asyncio.gather(*(_client_task(c, workload, tickets, tally, pace) for c in clients))
    return tally


def _check(workload: Workload, requests: int, tally: _Tally) -> None:
    if tally.failures:
        shown = "\n  ".join(tally.failures[:MAX_FAILURES_SHOWN])
        raise LoadError(
            f"{workload.mode}: {len(tally.failures)} of {requests} requests failed "
            f"(expected HTTP {workload.expected_status}); first ones:\n  {shown}"
        )


def _result(workload: Workload, tally: _Tally, before: CpuMark, after: CpuMark) -> LoadResult:
    requests = len(tally.latencies)
    seconds = after.wall - before.wall
    ordered = sorted(tally.latencies)
    cores = cores_busy(before, after)
    return LoadResult(
        mode=workload.mode,
        requests=requests,
        jobs=requests * workload.jobs_per_request,
        seconds=seconds,
        requests_per_second=requests / seconds,
        jobs_per_second=requests * workload.jobs_per_request / seconds,
        p50_ms=nearest_rank(ordered, 50) * 1000,
        p99_ms=nearest_rank(ordered, 99) * 1000,
        server_cores=cores.server,
        generator_cores=cores.generator,
        postgres_cores=cores.postgres,
        machine_cores=cores.machine,
        server_cpu_ms_per_request=None
        if cores.server is None
        else cores.server * seconds / requests * 1000,
    )


async def run_load(
    clients: list[LoadClient],
    workload: Workload,
    requests: int,
    warmup: int,
    server: RunningServer,
    pace: float | None = None,
) -> LoadResult:
    """Warm up, then measure ``requests`` requests; ``LoadError`` on any unexpected answer."""
    _check(workload, warmup, await _drive(clients, workload, warmup, pace))
    before = CpuMark.now(server.pid, server.postgres_database)
    tally = await _drive(clients, workload, requests, pace)
    after = CpuMark.now(server.pid, server.postgres_database)
    _check(workload, requests, tally)
    return _result(workload, tally, before, after)
