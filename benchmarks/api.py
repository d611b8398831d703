"""REST API enqueue throughput and latency: ``python -m benchmarks.api [--quick]``.

For each store (SQLite with ``synchronous=FULL``, PostgreSQL) and each mode
(``healthz``: the HTTP stack alone; ``single``: ``POST /api/v1/jobs``; ``batch``:
``POST /api/v1/jobs/batch``), a fresh database and a real ``conveyor serve``
subprocess, loaded by 50 client tasks (httpx, keep-alive) in this process, which
shares the machine's cores with the server and the database. Medians of the
repetitions go to ``benchmarks/results/api.json`` (``api-quick.json`` with
``--quick``) and are printed as Markdown; see ``docs/benchmarks.md``.

``--profile postgres/single`` instead runs that one load once with py-spy
sampling the server (``.venv/bin/uv pip install py-spy`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import api_report, hotspots, report
from benchmarks.api_load import (
    CLIENT_KINDS,
    LoadClient,
    LoadResult,
    Workload,
    health_check,
    job_batch,
    open_clients,
    run_load,
    single_job,
)
from benchmarks.api_server import STORES, RunningServer, api_server
from benchmarks.config import RESULTS_DIR
from benchmarks.machine import describe
from benchmarks.workers import BIN

MODES = ("healthz", "single", "batch")
API_PACKAGES = ("fastapi", "starlette", "uvicorn", "pydantic", "httpx", "psycopg")
_STARTED = time.monotonic()


@dataclass(frozen=True, slots=True)
class ApiPlan:
    """Sizes and repetitions of one run."""

    mode: str
    repeats: int
    concurrency: int
    health_requests: int
    single_requests: int
    batch_requests: int
    batch_size: int
    shared_pool: bool = False
    client: str = "httpx"
    pace: float | None = None

    def load(self, mode: str) -> tuple[Workload, int]:
        """The workload of ``mode`` and how many requests to measure."""
        if mode == "healthz":
            return health_check(), self.health_requests
        if mode == "single":
            return single_job(), self.single_requests
        if mode == "batch":
            return job_batch(self.batch_size), self.batch_requests
        raise ValueError(f"unknown mode {mode!r}")


FULL = ApiPlan("full", 3, 50, 10_000, 10_000, 300, 100)
QUICK = ApiPlan("quick", 1, 50, 1_000, 1_000, 30, 100)


def log(message: str) -> None:
    """A progress line on stderr, with the time since the run began."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def warmup_for(requests: int) -> int:
    """Requests sent, unmeasured, before the measured ones: a tenth, at least 10."""
    return max(10, requests // 10)


@contextlib.asynccontextmanager
async def loaded_server(
    plan: ApiPlan, store: str
) -> AsyncIterator[tuple[RunningServer, list[LoadClient]]]:
    """A fresh database and server of ``store``, and the clients to load it with."""
    async with (
        api_server(store) as server,
        open_clients(
            server.base_url, server.api_key, plan.concurrency, plan.shared_pool, plan.client
        ) as clients,
    ):
        yield server, clients


async def measure(plan: ApiPlan, store: str, mode: str) -> LoadResult:
    """One measurement: fresh database, fresh server, warm-up, measured load."""
    workload, requests = plan.load(mode)
    async with loaded_server(plan, store) as (server, clients):
        return await run_load(clients, workload, requests, warmup_for(requests), server, plan.pace)


def _describe(found: LoadResult) -> str:
    cores = (found.server_cores, found.generator_cores, found.postgres_cores, found.machine_cores)
    return (
        f"{found.requests_per_second:,.0f} req/s, {found.jobs_per_second:,.0f} jobs/s, "
        f"p50 {found.p50_ms:.1f} ms, p99 {found.p99_ms:.1f} ms; cores busy server / generator / "
        "postgres / machine " + " / ".join(f"{c or 0:.2f}" for c in cores)
    )


async def run_all(
    plan: ApiPlan, stores: list[str], modes: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every store and mode, ``plan.repeats`` times, taking turns; raw values and errors."""
    runs: dict[str, list[dict[str, Any]]] = {
        f"{store}/{mode}": [] for mode in modes for store in stores
    }
    errors: list[str] = []
    for repeat in range(1, plan.repeats + 1):
        for store in stores:
            for mode in modes:
                label = f"#{repeat} {store}/{mode}"
                try:
                    found = await measure(plan, store, mode)
                except Exception as exc:  # report every failure, then exit non-zero
                    errors.append(f"{label}: {exc}")
                    log(f"{label} FAILED: {exc}")
                    traceback.print_exc(file=sys.stderr)
                    continue
                runs[f"{store}/{mode}"].append(found.as_dict())
                log(f"{label}: {_describe(found)}")
    return runs, errors


def _start_py_spy(pid: int, output: Path, rate: int, blocking: bool) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--rate", str(rate)]
    command += [] if blocking else ["--nonblocking"]
    command += ["--format", "speedscope", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


@dataclass(frozen=True, slots=True)
class Sampling:
    """How py-spy samples: per second, and whether it pauses the server for each sample."""

    rate: int
    blocking: bool

    def describe(self) -> str:
        """For the profile's header."""
        return f"{self.rate}/s, py-spy {'blocking' if self.blocking else '--nonblocking'}"


async def profile(plan: ApiPlan, store: str, mode: str, spy: Sampling, output: Path) -> LoadResult:
    """One load with py-spy sampling the server during the measured requests only."""
    workload, requests = plan.load(mode)
    async with loaded_server(plan, store) as (server, clients):
        await run_load(clients, workload, warmup_for(requests), 0, server)
        process = _start_py_spy(server.pid, output, spy.rate, spy.blocking)
        try:
            await asyncio.sleep(1.0)  # py-spy attaches
            return await run_load(clients, workload, requests, 0, server)
        finally:
            _stop_py_spy(process)


def run_profile(plan: ApiPlan, target: str, spy: Sampling, top: int) -> None:
    """``--profile store/mode``: sample the server under that load; print and save hotspots."""
    store, _, mode = target.partition("/")
    if store not in STORES or mode not in MODES:
        raise SystemExit(f"--profile takes store/mode, e.g. postgres/single, not {target!r}")
    raw = Path(tempfile.gettempdir()) / f"profile-api-{store}-{mode}.speedscope.json"
    found = asyncio.run(profile(plan, store, mode, spy, raw))
    note = f"{spy.describe()}, {plan.concurrency} clients; {_describe(found)}"
    text = hotspots.summary(f"API server, {target}", hotspots.parse_speedscope(raw), top, note)
    text = text.replace("# Worker profile:", "# Server profile:", 1)
    out = RESULTS_DIR / f"profile-api-{store}-{mode}.md"
    out.write_text(text)
    print(text)
    print(f"raw profile: {raw} (open in https://www.speedscope.app); summary: {out}")


def _choices(given: str | None, known: tuple[str, ...], what: str) -> list[str]:
    chosen = [x.strip() for x in given.split(",") if x.strip()] if given else list(known)
    unknown = [x for x in chosen if x not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes, one repetition")
    add("--repeats", type=int, help="repetitions (default 3, quick 1)")
    add("--concurrency", type=int, help="client tasks and connections (default 50)")
    add("--single", type=int, help="measured single enqueues (default 10,000)")
    add("--batches", type=int, help="measured batch requests (default 300)")
    add("--batch-size", type=int, help="jobs per batch request (default 100)")
    add("--health", type=int, help="measured GET /healthz requests (default 10,000)")
    add("--shared-pool", action="store_true", help="one httpx client for all tasks")
    add(
        "--client",
        choices=CLIENT_KINDS,
        help="the generator's HTTP client: httpx (default) or raw (a minimal one, cheaper)",
    )
    add(
        "--pace",
        type=float,
        help="requests per second in all, instead of as fast as answers come; "
        "latency counts from when each request was due",
    )
    add("--stores", help=f"comma-separated: {', '.join(STORES)}")
    add("--modes", help=f"comma-separated: {', '.join(MODES)}")
    add("--output", type=Path, help="JSON path (default: results/api.json or api-quick.json)")
    add("--profile", metavar="STORE/MODE", help="profile the server under one load instead")
    add("--rate", type=int, default=200, help="py-spy samples per second (--profile)")
    add("--top", type=int, default=15, help="functions per thread shown (--profile)")
    add("--blocking", action="store_true", help="py-spy pauses the server per sample")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> ApiPlan:
    """The quick or full plan with the command line's overrides."""
    plan = QUICK if args.quick else FULL
    overrides = {
        "repeats": args.repeats,
        "concurrency": args.concurrency,
        "single_requests": args.single,
        "batch_requests": args.batches,
        "batch_size": args.batch_size,
        "health_requests": args.health,
        "shared_pool": args.shared_pool or None,
        "client": args.client,
        "pace": args.pace,
    }
    return replace(plan, **{k: v for k, v in overrides.items() if v is not None})


async def benchmark(plan: ApiPlan, stores: list[str], modes: list[str]) -> dict[str, Any]:
    """The whole run: machine description, every measurement, medians and targets."""
    meta = await describe()
    meta["api_packages"] = {name: metadata.version(name) for name in API_PACKAGES}
    log(f"plan: {plan}")
    runs, errors = await run_all(plan, stores, modes)
    return api_report.build(meta, asdict(plan), runs, errors)


def main(argv: list[str] | None = None) -> int:
    """Run, write the JSON, print the Markdown; 1 if any measurement failed."""
    args = parse_args(argv)
    plan = make_plan(args)
    if args.profile:
        run_profile(plan, args.profile, Sampling(args.rate, args.blocking), args.top)
        return 0
    stores = _choices(args.stores, STORES, "stores")
    modes = _choices(args.modes, MODES, "modes")
    result = asyncio.run(benchmark(plan, stores, modes))
    output = args.output or RESULTS_DIR / ("api-quick.json" if args.quick else "api.json")
    report.write_json(result, output)
    print(api_report.markdown(result))
    log(f"results: {output}")
    if result["errors"]:
        log(f"{len(result['errors'])} measurement(s) FAILED")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
