"""How late delayed jobs start: ``python -m benchmarks.lateness [--quick]``.

For each store (SQLite with ``synchronous=FULL``, PostgreSQL), a fresh database and
one real worker process, the same command as the other benchmarks
(``conveyor worker benchmarks.apps:app``), idle after a warm-up job. Then N no-op
jobs are enqueued one by one, ``gap`` seconds apart, each with ``run_at`` = its
enqueue time + a delay drawn uniformly (seeded) from ``[min_delay, max_delay]``:
jobs keep arriving while earlier ones fall due, and a new job is often due before
jobs already waiting. A job's lateness is ``started_at - run_at``, both read from
the database at the end (``started_at`` is written by the worker's claim).

Then, on the same worker (``conveyor worker`` fires schedules when it leads), a
schedule firing every second for ``cron_firings`` seconds, from 2 s after it is
made: a firing's lateness is ``started_at`` of its job minus the fire time (the
job's ``run_at``), and the part of it the scheduler adds is ``created_at`` minus the
fire time. p50 and
p99 (nearest rank) and max per run; medians over the repetitions go to
``benchmarks/results/lateness.json`` (``lateness-quick.json`` with ``--quick``) and
are printed as Markdown; see ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.api_report import targets_table
from benchmarks.config import RESULTS_DIR
from benchmarks.databases import fresh_database
from benchmarks.machine import describe
from benchmarks.report import Target
from benchmarks.scenarios import STARTUP_TIMEOUT, percentile
from benchmarks.systems.conveyor import NOOP, ConveyorPostgres, ConveyorSQLite
from benchmarks.workers import WorkerProcess
from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.jobs import DEFAULT_TENANT, Job, JobFilter, utcnow
from conveyor.domain.schedules import schedule_spec
from conveyor.domain.timing import every
from conveyor.services.schedules import ScheduleService
from conveyor.store import schedules_for

GOAL_P99_MS = 50.0
TAG = "lateness"
METRICS = (
    "p50_ms",
    "p99_ms",
    "max_ms",
    "min_ms",
    "early",
    "missing",
    "cron_p50_ms",
    "cron_p99_ms",
    "cron_max_ms",
    "cron_fire_p50_ms",
    "cron_fire_p99_ms",
    "cron_firings",
)
SCHEDULE = "bench-every-second"
_STARTED = time.monotonic()

_Conveyor = ConveyorSQLite | ConveyorPostgres
STORES: dict[str, type[_Conveyor]] = {"sqlite": ConveyorSQLite, "postgres": ConveyorPostgres}


@dataclass(frozen=True, slots=True)
class LatenessPlan:
    """Sizes and repetitions of one run."""

    mode: str
    repeats: int
    jobs: int
    gap_seconds: float
    min_delay: float
    max_delay: float
    cron_firings: int
    seed: int = 20261124


FULL = LatenessPlan(
    "full", repeats=3, jobs=300, gap_seconds=0.01, min_delay=0.2, max_delay=3.0, cron_firings=30
)
QUICK = LatenessPlan(
    "quick", repeats=1, jobs=100, gap_seconds=0.01, min_delay=0.2, max_delay=2.0, cron_firings=10
)


def log(message: str) -> None:
    """A progress line on stderr, with the time since the run began."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


async def _wait_done(
    system: _Conveyor, worker: WorkerProcess, total: int, max_seconds: float
) -> None:
    """Poll until ``total`` no-op jobs are done (or the time is up)."""
    deadline = time.monotonic() + max_seconds
    while await system.done_count() < total and time.monotonic() < deadline:
        worker.check_alive()
        await asyncio.sleep(0.1)


async def _enqueue_delayed(system: _Conveyor, plan: LatenessPlan, seed: int) -> None:
    """One job every ``gap_seconds``, each due a random delay after its enqueue."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    origin = loop.time()
    for n in range(plan.jobs):
        await asyncio.sleep(max(0.0, origin + n * plan.gap_seconds - loop.time()))
        delay = rng.uniform(plan.min_delay, plan.max_delay)
        run_at = datetime.now(UTC) + timedelta(seconds=delay)
        await system.app.aio.enqueue(NOOP, {}, run_at=run_at, tags=[TAG])


async def _fire_every_second(system: _Conveyor, firings: int) -> None:
    """A schedule of the no-op task firing every second, paused after ``firings`` s.

    It starts 2 s after it is made: the worker's scheduler learns of a schedule made by
    another process at its next look (at most ``scheduler_interval``, 1 s, later), and
    what is measured here is firing on time, not that delay."""
    store = await system.app.aio.store()
    principal = Principal(DEFAULT_TENANT, frozenset(Scope), email="bench@example.test")
    service = ScheduleService(schedules_for(store), principal, utcnow)
    start = utcnow().replace(microsecond=0) + timedelta(seconds=2)
    made = await service.create(schedule_spec(SCHEDULE, every(1, start), NOOP, start_at=start))
    await asyncio.sleep(firings + 2.5)
    await service.set_enabled(made.id, False)


async def _measured_jobs(system: _Conveyor, **filters: Any) -> list[Job]:
    store = await system.app.aio.store()
    found: list[Job] = []
    while True:
        after = found[-1].id if found else None
        page = await store.list_jobs(
            DEFAULT_TENANT,
            JobFilter(after_id=after, limit=1000, newest_first=False, **filters),
        )
        found += page
        if len(page) < 1000:
            return found


def lateness_of(jobs: list[Job]) -> dict[str, Any]:
    """Percentiles of ``started_at - run_at`` in ms; ``early`` counts jobs started before
    their ``run_at`` (must be 0), ``missing`` jobs that never started."""
    late = [(j.started_at - j.run_at).total_seconds() * 1000 for j in jobs if j.started_at]
    if not late:
        raise RuntimeError("no delayed job started")
    return {
        "p50_ms": percentile(late, 0.50),
        "p99_ms": percentile(late, 0.99),
        "max_ms": max(late),
        "min_ms": min(late),
        "early": sum(1 for ms in late if ms < 0),
        "missing": len(jobs) - len(late),
        "samples": len(late),
    }


def cron_lateness_of(jobs: list[Job]) -> dict[str, Any]:
    """Percentiles of a schedule's jobs: start after the fire time, and creation after it."""
    started = [(j.started_at - j.run_at).total_seconds() * 1000 for j in jobs if j.started_at]
    fired = [(j.created_at - j.run_at).total_seconds() * 1000 for j in jobs]
    if not started:
        raise RuntimeError("no scheduled job started")
    return {
        "cron_p50_ms": percentile(started, 0.50),
        "cron_p99_ms": percentile(started, 0.99),
        "cron_max_ms": max(started),
        "cron_fire_p50_ms": percentile(fired, 0.50),
        "cron_fire_p99_ms": percentile(fired, 0.99),
        "cron_firings": len(jobs),
    }


async def measure(plan: LatenessPlan, store: str, repeat: int) -> dict[str, Any]:
    """One run: fresh database, a worker process idle after a warm-up, delayed jobs."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-lateness-{store}-"))
    cls = STORES[store]
    try:
        async with fresh_database(f"lateness-{store}", cls.postgres) as url:
            system = cls(url, workdir)
            await system.install()
            async with system:
                worker = WorkerProcess(
                    system.worker_command(), system.worker_env(), workdir / "worker.log"
                )
                worker.start()
                try:
                    await system.enqueue_noop()  # warm-up: the worker is up and idle after it
                    await _wait_done(system, worker, 1, STARTUP_TIMEOUT)
                    await asyncio.sleep(0.5)
                    await _enqueue_delayed(system, plan, plan.seed + repeat)
                    await _wait_done(system, worker, plan.jobs + 1, plan.max_delay + 30.0)
                    await _fire_every_second(system, plan.cron_firings)
                    await _wait_done(system, worker, plan.jobs + 1 + plan.cron_firings, 30.0)
                finally:
                    worker.stop()
                delayed = lateness_of(await _measured_jobs(system, tag=TAG))
                return delayed | cron_lateness_of(await _measured_jobs(system, key=SCHEDULE))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def run_all(
    plan: LatenessPlan, stores: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every store ``plan.repeats`` times, taking turns; raw values and errors."""
    runs: dict[str, list[dict[str, Any]]] = {store: [] for store in stores}
    errors: list[str] = []
    for repeat in range(1, plan.repeats + 1):
        for store in stores:
            label = f"#{repeat} {store}"
            try:
                found = await measure(plan, store, repeat)
            except Exception as exc:  # report every failure, then exit non-zero
                errors.append(f"{label}: {exc}")
                log(f"{label} FAILED: {exc}")
                traceback.print_exc(file=sys.stderr)
                continue
            runs[store].append(found)
            log(
                f"{label}: p50 {found['p50_ms']:.1f} ms, p99 {found['p99_ms']:.1f} ms, "
                f"max {found['max_ms']:.1f} ms, early {found['early']}, "
                f"missing {found['missing']}; every-second schedule: "
                f"{found['cron_firings']} firings, p99 {found['cron_p99_ms']:.1f} ms"
            )
    return runs, errors


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float | None]]:
    """The median of every metric per store, over the repetitions that succeeded."""
    return {
        store: {
            metric: statistics.median([r[metric] for r in measured]) if measured else None
            for metric in METRICS
        }
        for store, measured in runs.items()
    }


def targets(summary: dict[str, dict[str, float | None]]) -> list[Target]:
    """p99 lateness within the goal, per store."""
    found = []
    for store, values in summary.items():
        for kind, metric in (("delayed jobs", "p99_ms"), ("cron firings", "cron_p99_ms")):
            p99 = values[metric]
            measured = "n/a" if p99 is None else f"{p99:.1f} ms"
            met = None if p99 is None else p99 <= GOAL_P99_MS
            name = f"p99 lateness of {kind} <= {GOAL_P99_MS:.0f} ms ({store})"
            found.append(Target(name, measured, met))
    return found


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    """The run as Markdown: when and where, the medians, the targets."""
    m, p = result["meta"], result["plan"]
    changed = " (with uncommitted changes in src/)" if m["git_src_changed"] else ""
    lines = [
        f"Run of {m['date']}, mode **{p['mode']}**, median of {p['repeats']} repetition(s), "
        f"source {m['git_commit']}{changed}.",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}; "
        f"load average at start {m['load_average_at_start']}. Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, SQLite {m['sqlite']}.",
        "",
        f"Per repetition and store: {p['jobs']} jobs enqueued {p['gap_seconds'] * 1000:.0f} ms "
        f"apart, each due {p['min_delay']}-{p['max_delay']} s after its enqueue.",
        "",
        "| store | p50 ms | p99 ms | max ms | min ms | started early | never started |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for store, s in result["summary"].items():
        lines.append(
            f"| {store} | {_cell(s['p50_ms'])} | {_cell(s['p99_ms'])} | {_cell(s['max_ms'])} "
            f"| {_cell(s['min_ms'])} | {_cell(s['early'], 0)} | {_cell(s['missing'], 0)} |"
        )
    lines += [
        "",
        f"A schedule firing every second for {p['cron_firings']} s on the same worker: "
        "lateness of each job's start after its fire time, and of its creation (the "
        "scheduler's part).",
        "",
        "| store | firings | start p50 ms | start p99 ms | start max ms | created p50 ms "
        "| created p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for store, s in result["summary"].items():
        lines.append(
            f"| {store} | {_cell(s['cron_firings'], 0)} | {_cell(s['cron_p50_ms'])} "
            f"| {_cell(s['cron_p99_ms'])} | {_cell(s['cron_max_ms'])} "
            f"| {_cell(s['cron_fire_p50_ms'])} | {_cell(s['cron_fire_p99_ms'])} |"
        )
    lines += ["", *targets_table(result)]
    if result["errors"]:
        lines += ["", "Failed measurements:", *(f"- {e}" for e in result["errors"])]
    return "\n".join(lines) + "\n"


async def benchmark(plan: LatenessPlan, stores: list[str]) -> dict[str, Any]:
    """The whole run: machine description, every measurement, medians and targets."""
    meta = await describe()
    log(f"plan: {plan}")
    runs, errors = await run_all(plan, stores)
    summary = summarize(runs)
    return {
        "meta": meta,
        "plan": asdict(plan),
        "runs": runs,
        "summary": summary,
        "targets": [asdict(t) for t in targets(summary)],
        "errors": errors,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lateness", description=__doc__)
    add = parser.add_argument
    add("--quick", action="store_true", help="100 jobs, one repetition")
    add("--repeats", type=int, help="repetitions (default 3, quick 1)")
    add("--jobs", type=int, help="delayed jobs per run (default 300, quick 100)")
    add("--gap", type=float, help="seconds between enqueues (default 0.01)")
    add("--max-delay", type=float, help="longest delay, seconds (default 3, quick 2)")
    add("--stores", help=f"comma-separated: {', '.join(STORES)}")
    add("--output", type=Path, help="JSON path (default: results/lateness[-quick].json)")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> LatenessPlan:
    """The quick or full plan with the command line's overrides."""
    plan = QUICK if args.quick else FULL
    overrides = {
        "repeats": args.repeats,
        "jobs": args.jobs,
        "gap_seconds": args.gap,
        "max_delay": args.max_delay,
    }
    return replace(plan, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    """Run, write the JSON, print the Markdown; 1 if any measurement failed."""
    args = parse_args(argv)
    stores = [s.strip() for s in (args.stores or ",".join(STORES)).split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORES]
    if unknown:
        raise SystemExit(f"unknown stores: {', '.join(unknown)} (known: {', '.join(STORES)})")
    plan = make_plan(args)
    result = asyncio.run(benchmark(plan, stores))
    output = args.output or RESULTS_DIR / (
        "lateness-quick.json" if plan.mode == "quick" else "lateness.json"
    )
    report.write_json(result, output)
    print(markdown(result))
    log(f"results: {output}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
