"""Medians, ratios and targets from the raw runs; the JSON file and the doc's results block."""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.claim_cost import ClaimCost
from benchmarks.commit_floor import CommitLatency
from benchmarks.config import (
    CELERY_RABBITMQ_PER_SECOND,
    DOC_PATH,
    RESULTS_DIR,
    SLOW_RUN_FRACTION,
    STALL_FRACTION,
    STALL_SECONDS,
    SYSTEMS,
    Plan,
)

METRICS = (
    "enqueue_single",
    "enqueue_batched",
    "processed",
    "pickup_p50_ms",
    "pickup_p99_ms",
    "worker_cpu_ms_per_1000",
    "database_cpu_ms_per_1000",
)
# Measured by the processing run: a stalled run's values are left out of their median.
PROCESS_METRICS = frozenset({"processed", "worker_cpu_ms_per_1000", "database_cpu_ms_per_1000"})
BEGIN = "<!-- results:begin (written by `python -m benchmarks.run`) -->"
END = "<!-- results:end -->"


@dataclass(frozen=True, slots=True)
class Target:
    """One target and whether this run met it (None: not measured)."""

    goal: str
    measured: str
    met: bool | None


def stall_flags(metrics: dict[str, list[Any]]) -> list[bool]:
    """Per processing run of one system, whether it stalled (see ``config``): runs
    recorded without their longest stall are judged by their rate alone."""
    processed = metrics.get("processed", [])
    stalls = metrics.get("processed_stall_s") or [0.0] * len(processed)
    best = max(processed, default=0.0)
    return [
        (stall or 0.0) >= STALL_SECONDS or rate < SLOW_RUN_FRACTION * best
        for stall, rate in zip(stalls, processed, strict=True)
    ]


def _kept(metrics: dict[str, list[Any]]) -> list[bool]:
    """Per processing run, whether its values go into the median: the runs that did not
    stall, or every run when all did."""
    flags = stall_flags(metrics)
    return [True] * len(flags) if all(flags) else [not stall for stall in flags]


def summarize(runs: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, float | None]]:
    """The median of each metric per system (None when not measured). A processing run
    that stalled is left out, unless every one did."""
    summary: dict[str, dict[str, float | None]] = {}
    for system, metrics in runs.items():
        summary[system] = {}
        kept = _kept(metrics)
        for metric in METRICS:
            values = metrics.get(metric, [])
            if values and metric in PROCESS_METRICS:
                values = [v for v, keep in zip(values, kept, strict=True) if keep]
            values = [v for v in values if v is not None]
            summary[system][metric] = statistics.median(values) if values else None
    return summary


def _get(summary: dict[str, dict[str, float | None]], system: str, metric: str) -> float | None:
    return summary.get(system, {}).get(metric)


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else top / bottom


def celery_baseline(summary: dict[str, dict[str, float | None]]) -> tuple[float, bool]:
    """Celery on RabbitMQ's processed/s: measured in this run when it ran (``True``),
    else the quoted figure (``False``)."""
    measured = _get(summary, "celery-rabbitmq", "processed")
    return (measured, True) if measured else (CELERY_RABBITMQ_PER_SECOND, False)


def _celery_label(summary: dict[str, dict[str, float | None]]) -> str:
    per_second, measured = celery_baseline(summary)
    how = "same run" if measured else "quoted, not re-run"
    return f"Celery on RabbitMQ ({per_second:,.0f}/s, {how})"


def ratios(summary: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    """Conveyor PG processed / pgqueuer processed; Conveyor SQLite processed / Celery."""
    return {
        "conveyor_postgres_vs_pgqueuer": _ratio(
            _get(summary, "conveyor-postgres", "processed"), _get(summary, "pgqueuer", "processed")
        ),
        "conveyor_postgres_vs_pgqueuer_batch100": _ratio(
            _get(summary, "conveyor-postgres", "processed"),
            _get(summary, "pgqueuer-batch100", "processed"),
        ),
        "conveyor_sqlite_vs_celery_rabbitmq": _ratio(
            _get(summary, "conveyor-sqlite", "processed"), celery_baseline(summary)[0]
        ),
    }


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _at_least(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


def _at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def _floor_note(floor: dict[str, float] | None) -> str:
    return "" if floor is None else f" (a bare commit's p99: {floor['p99_ms']:.1f} ms)"


def targets(
    summary: dict[str, dict[str, float | None]],
    claim: dict[str, Any] | None,
    floors: dict[str, dict[str, float]] | None = None,
) -> list[Target]:
    """The benchmark's targets, each with the measured value."""
    found = ratios(summary)
    pg_vs = found["conveyor_postgres_vs_pgqueuer"]
    sqlite_vs = found["conveyor_sqlite_vs_celery_rabbitmq"]
    p99 = _get(summary, "conveyor-postgres", "pickup_p99_ms")
    result = [
        Target(
            "PostgreSQL processing >= 3x pgqueuer (same run)",
            _fmt(pg_vs, 2, "x"),
            _at_least(pg_vs, 3.0),
        ),
        Target(
            f"SQLite processing >= 5x {_celery_label(summary)}",
            _fmt(sqlite_vs, 2, "x"),
            _at_least(sqlite_vs, 5.0),
        ),
        Target(
            "p99 pickup <= 5 ms on PostgreSQL",
            _fmt(p99, 1, " ms") + _floor_note((floors or {}).get("postgresql")),
            _at_most(p99, 5.0),
        ),
    ]
    for system in ("conveyor-postgres", "conveyor-sqlite"):
        batched = _get(summary, system, "enqueue_batched")
        result.append(
            Target(
                f"batched enqueue >= 50,000 jobs/s ({system})",
                _fmt(batched, 0, "/s"),
                _at_least(batched, 50_000),
            )
        )
    ratio = claim.get("ratio") if claim else None
    result.append(
        Target(
            "claim+finish cost with 1,000,000 waiting within 2x of 1,000",
            _fmt(ratio, 2, "x"),
            _at_most(ratio, 2.0),
        )
    )
    return result


def commit_floors(floors: list[CommitLatency]) -> dict[str, dict[str, float]]:
    """Per database, the median over repetitions of each commit-floor percentile."""
    by_database: dict[str, list[CommitLatency]] = {}
    for floor in floors:
        by_database.setdefault(floor.database, []).append(floor)
    return {
        database: {
            "p50_ms": statistics.median(f.p50_ms for f in found),
            "p99_ms": statistics.median(f.p99_ms for f in found),
            "max_ms": max(f.max_ms for f in found),
        }
        for database, found in by_database.items()
    }


def build(
    meta: dict[str, Any],
    plan: Plan,
    runs: dict[str, dict[str, list[Any]]],
    claim: list[ClaimCost] | None,
    floors: list[CommitLatency] | None = None,
) -> dict[str, Any]:
    """The whole result document (what goes to JSON)."""
    claim_doc = None
    if claim:
        small, large = claim[0], claim[-1]
        claim_doc = {
            "sizes": [asdict(c) for c in claim],
            "ratio": large.median_ms / small.median_ms,
        }
    return judged(meta, asdict(plan), runs, claim_doc, commit_floors(floors or []))


def judged(
    meta: dict[str, Any],
    plan: dict[str, Any],
    runs: dict[str, dict[str, list[Any]]],
    claim_doc: dict[str, Any] | None,
    floor_doc: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The result document from the raw measurements: medians, ratios, targets."""
    summary = summarize(runs)
    return {
        "meta": meta,
        "plan": plan,
        "runs": runs,
        "summary": summary,
        "ratios": ratios(summary),
        "celery_rabbitmq_per_second": celery_baseline(summary)[0],
        "celery_rabbitmq_measured": celery_baseline(summary)[1],
        "claim_cost": claim_doc,
        "commit_floor": floor_doc,
        "targets": [asdict(t) for t in targets(summary, claim_doc, floor_doc)],
    }


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write the result document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")


def _results_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| system | enqueue/s single | enqueue/s batched | processed/s "
        "| pickup p50 ms | pickup p99 ms | CPU ms per 1,000 processed: worker / PostgreSQL |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system, s in result["summary"].items():
        runs = result["runs"][system]
        kept = _kept(runs)
        caps = runs.get("processed_capped") or [False] * len(kept)
        capped = any(c for c, keep in zip(caps, kept, strict=True) if keep)
        stalls = any(stall_flags(runs))
        lines.append(
            f"| {system} | {_fmt(s['enqueue_single'])} | {_fmt(s['enqueue_batched'])} "
            f"| {_fmt(s['processed'])}{' *' if capped else ''}{' †' if stalls else ''} "
            f"| {_fmt(s['pickup_p50_ms'], 1)} | {_fmt(s['pickup_p99_ms'], 1)} "
            f"| {_fmt(s.get('worker_cpu_ms_per_1000'))} / "
            f"{_fmt(s.get('database_cpu_ms_per_1000'))} |"
        )
    return lines


def _meta_lines(result: dict[str, Any]) -> list[str]:
    m, p = result["meta"], result["plan"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    changed = " (with uncommitted changes in src/)" if m["git_src_changed"] else ""
    return [
        f"Run of {m['date']}, mode **{p['mode']}**, median of {p['repeats']} repetition(s), "
        f"source {m['git_commit']}{changed}.",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}; "
        f"load average at start {m['load_average_at_start']}. Shared machine: expect noise.",
        f"Versions: Python {m['python']}, PostgreSQL {m['postgresql']}, SQLite {m['sqlite']}; "
        f"{packages}.",
        "",
        f"Sizes: single enqueue {p['single_jobs']:,} jobs; batched {p['batched_jobs']:,} jobs "
        f"in batches of {p['batch_size']:,}; processed/s over {p['process_jobs']:,} pre-loaded "
        f"jobs (at most {p['process_max_seconds']:g} s from the first start); pickup latency "
        f"over {p['latency_jobs']} jobs enqueued {p['latency_gap_seconds'] * 1000:g} ms apart.",
    ]


def stall_notes(runs: dict[str, dict[str, list[Any]]]) -> list[str]:
    """One line per stalled processing run: system, run, rate, jobs done, longest stall."""
    notes = []
    for system, metrics in runs.items():
        flags = stall_flags(metrics)
        stalls = metrics.get("processed_stall_s") or [None] * len(flags)
        for index, stall in enumerate(flags):
            if not stall:
                continue
            longest = "not recorded" if stalls[index] is None else f"{stalls[index]:.1f} s"
            notes.append(
                f"{system} run {index + 1} of {len(flags)}: {metrics['processed'][index]:,.1f}/s, "
                f"{metrics['processed_done'][index]:,} jobs done, longest stall {longest}"
                + (" (every run stalled: the median is of them)" if all(flags) else "")
            )
    return notes


def _stall_lines(result: dict[str, Any]) -> list[str]:
    notes = stall_notes(result["runs"])
    if not notes:
        return []
    return [
        "",
        "† processed/s leaves out the runs that stalled: jobs finished at under "
        f"1/{1 / STALL_FRACTION:.0f} of the run's best pace for {STALL_SECONDS:g} s or more "
        f"while jobs waited, or the run went at under 1/{1 / SLOW_RUN_FRACTION:.0f} of the "
        "system's best run. A run seen to stall as it ends is measured once more. "
        + "; ".join(notes)
        + ".",
    ]


def _claim_lines(result: dict[str, Any]) -> list[str]:
    claim = result["claim_cost"]
    if not claim:
        return []
    lines = [
        "",
        "Claim cost (Conveyor on PostgreSQL, claim 100 + finish 100, median of "
        f"{result['plan']['claim_rounds']} rounds):",
        "",
        "| waiting jobs | ms per round | p90 ms | jobs/s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for c in claim["sizes"]:
        lines.append(
            f"| {c['waiting']:,} | {c['median_ms']:.1f} | {c['p90_ms']:.1f} "
            f"| {c['jobs_per_second']:,.0f} |"
        )
    lines += ["", f"Ratio large/small: **{claim['ratio']:.2f}x** (target: within 2x)."]
    return lines


def _floor_lines(result: dict[str, Any]) -> list[str]:
    floors = result.get("commit_floor")
    if not floors:
        return []
    lines = [
        "",
        "Commit floor: one bare durable single-row `INSERT` commit, paced as the pickup jobs "
        "are, median over repetitions. An enqueue returns only after such a commit, so the "
        "disk's slow flushes reach every system's pickup p99 too:",
        "",
        "| database | p50 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for database, f in floors.items():
        lines.append(f"| {database} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['max_ms']:.1f} |")
    return lines


def _target_lines(result: dict[str, Any]) -> list[str]:
    lines = ["", "| target | measured | met? |", "| --- | ---: | --- |"]
    for t in result["targets"]:
        met = "n/a" if t["met"] is None else ("**yes**" if t["met"] else "**NO**")
        lines.append(f"| {t['goal']} | {t['measured']} | {met} |")
    met = [t["goal"] for t in result["targets"] if t["met"]]
    missed = [t["goal"] for t in result["targets"] if t["met"] is False]
    lines += [
        "",
        f"In short: {len(met)} of {len(result['targets'])} targets met"
        + (f" ({'; '.join(met)})" if met else "")
        + (f"; **not met**: {'; '.join(missed)}." if missed else "."),
    ]
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The results block of ``docs/benchmarks.md``."""
    r = result["ratios"]
    lines = [
        BEGIN,
        "",
        *_meta_lines(result),
        "",
        *_results_table(result),
        "",
        "\\* processed/s measured over the time window only: the worker had not finished every"
        " pre-loaded job when the window closed (see the method above).",
        *_stall_lines(result),
        "",
        f"Ratios: Conveyor PostgreSQL processed / pgqueuer processed = "
        f"**{_fmt(r['conveyor_postgres_vs_pgqueuer'], 2, 'x')}**; Conveyor SQLite processed / "
        f"{_celery_label(result['summary'])} = "
        f"**{_fmt(r['conveyor_sqlite_vs_celery_rabbitmq'], 2, 'x')}**. For reference, Conveyor"
        f" PostgreSQL / pgqueuer with batch 100 = "
        f"{_fmt(r['conveyor_postgres_vs_pgqueuer_batch100'], 2, 'x')}.",
        *_claim_lines(result),
        *_floor_lines(result),
        *_target_lines(result),
        "",
        END,
    ]
    return "\n".join(lines)


def complete(result: dict[str, Any]) -> bool:
    """Whether a run may stand in the doc: a full run of every system, with no failed
    measurement and statistics taken after the pre-load."""
    plan = result["plan"]
    return (
        plan["mode"] == "full"
        and set(SYSTEMS) <= set(result["runs"])
        and not result["meta"].get("errors")
        and plan["analyze_after_preload"]
    )


def update_doc(result: dict[str, Any], path: Path) -> None:
    """Replace the results block of the doc (the rest is hand-written)."""
    text = path.read_text()
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise RuntimeError(f"{path} has no results markers")
    path.write_text(head + markdown(result) + tail)


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.report [JSON]``: judge a saved run again with this code's
    rules (medians, stalls, targets), rewrite its JSON and, for a complete run, the
    doc's results block."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    parser.add_argument("path", type=Path, nargs="?", default=RESULTS_DIR / "latest.json")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the doc")
    args = parser.parse_args(argv)
    saved = json.loads(args.path.read_text())
    result = judged(
        saved["meta"],
        saved["plan"],
        saved["runs"],
        saved.get("claim_cost"),
        saved.get("commit_floor") or {},
    )
    write_json(result, args.path)
    if complete(result) and not args.no_doc:
        update_doc(result, DOC_PATH)
    print(markdown(result))


if __name__ == "__main__":
    main()
