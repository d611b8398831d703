"""Run the benchmarks: ``python -m benchmarks.run [--quick] [--jobs N] [--only a,b]``.

Every measurement gets a fresh database (a new PostgreSQL database, or a new
SQLite file) and, where a worker is involved, a new worker process. Systems take
turns within each repetition, so a slow spell of the shared machine is spread
over all of them. Results go to ``benchmarks/results/``; a full run of every
system also rewrites the results block of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import claim_cost, commit_floor, report, scenarios
from benchmarks.config import DOC_PATH, EXTRA_SYSTEMS, FULL, QUICK, RESULTS_DIR, SYSTEMS, Plan
from benchmarks.databases import fresh_database
from benchmarks.machine import describe
from benchmarks.systems import REGISTRY, System

Scenario = Callable[[System], Awaitable[dict[str, Any]]]
_STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line on stderr, with the time since the run began."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def scenario_table(plan: Plan) -> dict[str, Scenario]:
    """Each measurement as a function of an open system, returning named metrics."""

    async def single(system: System) -> dict[str, Any]:
        return {"enqueue_single": await scenarios.enqueue_single(system, plan.single_jobs)}

    async def batched(system: System) -> dict[str, Any]:
        rate = await scenarios.enqueue_batched(system, plan.batched_jobs, plan.batch_size)
        return {"enqueue_batched": rate}

    async def processing(system: System) -> dict[str, Any]:
        found = await scenarios.processing(system, plan)
        return {
            "processed": found.per_second,
            "processed_done": found.done,
            "processed_window_s": found.window_seconds,
            "processed_capped": found.capped,
            "processed_stall_s": found.stall_seconds,
            "worker_cpu_ms_per_1000": found.worker_cpu_ms,
            "database_cpu_ms_per_1000": found.database_cpu_ms,
        }

    async def latency(system: System) -> dict[str, Any]:
        found = await scenarios.latency(system, plan)
        return {
            "pickup_p50_ms": found.p50_ms,
            "pickup_p99_ms": found.p99_ms,
            "pickup_missing": found.missing,
        }

    return {
        "enqueue": single,
        "enqueue-batched": batched,
        "process": processing,
        "latency": latency,
    }


async def measure(cls: type[System], scenario: Scenario) -> dict[str, Any]:
    """One measurement on a fresh database and a fresh working directory."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{cls.name}-"))
    try:
        async with fresh_database(cls.name, cls.postgres) as url:
            system = cls(url, workdir)
            await system.install()
            async with system:
                return await scenario(system)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _describe(metrics: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )


async def run_systems(
    systems: list[str], plan: Plan
) -> tuple[dict[str, dict[str, list[Any]]], list[str], list[commit_floor.CommitLatency]]:
    """Every scenario on every system, ``plan.repeats`` times, each repetition followed by
    the commit floor (:mod:`benchmarks.commit_floor`); raw values, errors, floors."""
    runs: dict[str, dict[str, list[Any]]] = {name: {} for name in systems}
    errors: list[str] = []
    floors: list[commit_floor.CommitLatency] = []
    table = scenario_table(plan)
    for repeat in range(1, plan.repeats + 1):
        for name in systems:
            for label, scenario in table.items():
                metrics = await _record(runs[name], name, label, scenario, repeat, errors)
                if metrics is not None and _stalled(metrics, runs[name]):
                    log(f"#{repeat} {name} {label} stalled: measuring it once more")
                    await _record(runs[name], name, label, scenario, repeat, errors)
        floors += await run_commit_floor(plan, systems, errors)
    return runs, errors, floors


def _stalled(metrics: dict[str, Any], runs: dict[str, list[Any]]) -> bool:
    """Whether ``metrics``, just appended to ``runs``, are of a processing run that stalled."""
    return "processed" in metrics and report.stall_flags(runs)[-1]


async def _record(
    runs: dict[str, list[Any]],
    name: str,
    label: str,
    scenario: Scenario,
    repeat: int,
    errors: list[str],
) -> dict[str, Any] | None:
    """Measure once and append each metric to ``runs``; a failure goes to ``errors``."""
    try:
        metrics = await measure(REGISTRY[name], scenario)
    except Exception as exc:  # keep going: report what could be measured
        errors.append(f"{name} {label} #{repeat}: {exc!r}")
        log(f"#{repeat} {name} {label} FAILED: {exc!r}")
        traceback.print_exc(file=sys.stderr)
        return None
    for key, value in metrics.items():
        runs.setdefault(key, []).append(value)
    log(f"#{repeat} {name} {label}: {_describe(metrics)}")
    return metrics


async def run_commit_floor(
    plan: Plan, systems: list[str], errors: list[str]
) -> list[commit_floor.CommitLatency]:
    """A bare durable commit on each database the systems use, paced as the pickup
    latency jobs are; a failure is noted in ``errors``, like a scenario's."""
    kinds = {REGISTRY[name].postgres for name in systems}
    measures = {True: commit_floor.postgres, False: commit_floor.sqlite}
    found = []
    for postgres in sorted(kinds, reverse=True):
        try:
            floor = await measures[postgres](plan.latency_jobs, plan.latency_gap_seconds)
        except Exception as exc:  # keep going: report what could be measured
            errors.append(f"commit floor: {exc!r}")
            log(f"commit floor FAILED: {exc!r}")
            continue
        log(
            f"commit floor, {floor.database}: p50 {floor.p50_ms:.2f} ms, "
            f"p99 {floor.p99_ms:.2f} ms, max {floor.max_ms:.1f} ms"
        )
        found.append(floor)
    return found


async def run_claim_cost(plan: Plan) -> list[claim_cost.ClaimCost]:
    """Claim cost at the small and the large backlog."""
    found = []
    for waiting in (plan.claim_small, plan.claim_large):
        cost = await claim_cost.measure(waiting, plan.claim_rounds)
        log(f"claim cost, {waiting:,} waiting: {cost.median_ms:.1f} ms per 100")
        found.append(cost)
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--jobs", type=int, help="jobs pre-loaded for processed/s")
    parser.add_argument("--repeats", type=int, help="repetitions (default 3, quick 1)")
    parser.add_argument(
        "--only",
        help=f"comma-separated systems: {', '.join(SYSTEMS + EXTRA_SYSTEMS)}",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="process with the statistics of the empty tables (no ANALYZE after pre-load)",
    )
    parser.add_argument("--no-claim-cost", action="store_true", help="skip the claim cost")
    parser.add_argument("--output", type=Path, help="JSON path (default: results/latest.json)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the doc")
    return parser.parse_args(argv)


def _systems(only: str | None) -> list[str]:
    names = (
        [n.strip() for n in only.split(",") if n.strip()] if only else [*SYSTEMS, *EXTRA_SYSTEMS]
    )
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    return names


async def main_async(args: argparse.Namespace) -> int:
    """Run, then write the JSON and (full runs of every system) the doc."""
    plan = (QUICK if args.quick else FULL).with_jobs(args.jobs)
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
    if args.no_analyze:
        plan = replace(plan, analyze_after_preload=False)
    systems = _systems(args.only)
    meta = await describe()
    log(f"{plan.mode} run of {', '.join(systems)} on {meta['nproc']} cores ({meta['cpu']})")
    runs, errors, floors = await run_systems(systems, plan)
    claim = None
    if "conveyor-postgres" in systems and not args.no_claim_cost:
        claim = await run_claim_cost(plan)
    result = report.build({**meta, "errors": errors}, plan, runs, claim, floors)
    output = args.output or RESULTS_DIR / ("latest.json" if not args.quick else "quick.json")
    report.write_json(result, output)
    log(f"wrote {output}")
    if report.complete(result) and not args.no_doc:
        report.update_doc(result, DOC_PATH)
        log(f"updated {DOC_PATH}")
    print(report.markdown(result))
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    sys.exit(asyncio.run(main_async(parse_args(argv))))


if __name__ == "__main__":
    main()
