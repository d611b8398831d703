"""The API benchmark's medians, targets and Markdown table."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.report import Target

METRICS = (
    "requests_per_second",
    "jobs_per_second",
    "p50_ms",
    "p99_ms",
    "server_cores",
    "generator_cores",
    "postgres_cores",
    "machine_cores",
    "server_cpu_ms_per_request",
)
SINGLE_GOAL_PER_SECOND = 1_500.0
SINGLE_GOAL_P99_MS = 50.0
BATCH_GOAL_JOBS_PER_SECOND = 20_000.0

Summary = dict[str, dict[str, float | None]]


@dataclass(frozen=True, slots=True)
class Row:
    """One measured load: a store and a mode (``healthz``, ``single``, ``batch``)."""

    store: str
    mode: str

    @property
    def key(self) -> str:
        """``store/mode``, the key of the runs and the summary."""
        return f"{self.store}/{self.mode}"


def summarize(runs: dict[str, list[dict[str, Any]]]) -> Summary:
    """The median of every metric per row, over the repetitions that succeeded."""
    summary: Summary = {}
    for key, measured in runs.items():
        summary[key] = {}
        for metric in METRICS:
            values = [m[metric] for m in measured if m.get(metric) is not None]
            summary[key][metric] = statistics.median(values) if values else None
    return summary


def _value(summary: Summary, key: str, metric: str) -> float | None:
    return summary.get(key, {}).get(metric)


def _fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def _check(value: float | None, goal: float, at_least: bool) -> bool | None:
    if value is None:
        return None
    return value >= goal if at_least else value <= goal


def targets(summary: Summary, batch_size: int) -> list[Target]:
    """The API benchmark's targets, each with what was measured."""
    single = _value(summary, "postgres/single", "requests_per_second")
    p99 = _value(summary, "postgres/single", "p99_ms")
    found = [
        Target(
            f"single enqueue >= {SINGLE_GOAL_PER_SECOND:,.0f}/s on PostgreSQL",
            _fmt(single, 0, "/s"),
            _check(single, SINGLE_GOAL_PER_SECOND, at_least=True),
        ),
        Target(
            f"single enqueue p99 <= {SINGLE_GOAL_P99_MS:.0f} ms on PostgreSQL",
            _fmt(p99, 1, " ms"),
            _check(p99, SINGLE_GOAL_P99_MS, at_least=False),
        ),
    ]
    for store in ("postgres", "sqlite"):
        jobs = _value(summary, f"{store}/batch", "jobs_per_second")
        found.append(
            Target(
                f"batches of {batch_size} >= {BATCH_GOAL_JOBS_PER_SECOND:,.0f} jobs/s ({store})",
                _fmt(jobs, 0, "/s"),
                _check(jobs, BATCH_GOAL_JOBS_PER_SECOND, at_least=True),
            )
        )
    return found


def build(
    meta: dict[str, Any],
    plan: dict[str, Any],
    runs: dict[str, list[dict[str, Any]]],
    errors: list[str],
) -> dict[str, Any]:
    """The whole result document (what goes to JSON)."""
    summary = summarize(runs)
    return {
        "meta": meta,
        "plan": plan,
        "runs": runs,
        "summary": summary,
        "targets": [asdict(t) for t in targets(summary, plan["batch_size"])],
        "errors": errors,
    }


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else _fmt(value, digits)


def _row(key: str, s: dict[str, float | None]) -> str:
    store, _, mode = key.partition("/")
    cores = ("server_cores", "generator_cores", "postgres_cores", "machine_cores")
    cpu = " / ".join(_cell(s[m], 2) for m in cores)
    jobs = "-" if mode == "healthz" else _cell(s["jobs_per_second"])
    return (
        f"| {store} | {mode} | {_cell(s['requests_per_second'])} | {jobs} "
        f"| {_cell(s['p50_ms'], 1)} | {_cell(s['p99_ms'], 1)} "
        f"| {_cell(s['server_cpu_ms_per_request'], 2)} | {cpu} |"
    )


def results_table(result: dict[str, Any]) -> list[str]:
    """The table of medians, one row per store and mode."""
    lines = [
        "| store | mode | requests/s | jobs/s | p50 ms | p99 ms | server CPU ms/request "
        "| cores busy: server / generator / postgres / machine |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(key, s) for key, s in result["summary"].items()]
    return lines


def targets_table(result: dict[str, Any]) -> list[str]:
    """The targets with what was measured and whether it was met."""
    lines = ["| target | measured | met? |", "| --- | ---: | --- |"]
    for t in result["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**NO**")
        lines.append(f"| {t['goal']} | {t['measured']} | {met} |")
    return lines


def _header(result: dict[str, Any]) -> list[str]:
    m, p = result["meta"], result["plan"]
    changed = " (with uncommitted changes in src/)" if m["git_src_changed"] else ""
    return [
        f"Run of {m['date']}, mode **{p['mode']}**, median of {p['repeats']} repetition(s), "
        f"source {m['git_commit']}{changed}.",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, {m['os']}; "
        f"load average at start {m['load_average_at_start']}. Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, SQLite {m['sqlite']}; "
        + ", ".join(f"{k} {v}" for k, v in m["api_packages"].items() if v)
        + ".",
        "",
        f"Load: {p['concurrency']} client tasks in one process, "
        + ("sharing one httpx client" if p["shared_pool"] else "one httpx client each")
        + ", on keep-alive connections; per repetition "
        f"{p['health_requests']:,} `GET /healthz`, {p['single_requests']:,} single "
        f"enqueues, {p['batch_requests']:,} batches of {p['batch_size']} "
        "(each after a warm-up of a tenth as many).",
        "",
    ]


def markdown(result: dict[str, Any]) -> str:
    """The run as Markdown: header, results, targets."""
    lines = [*_header(result), *results_table(result), "", *targets_table(result)]
    if result["errors"]:
        lines += ["", "Failed measurements:", *(f"- {e}" for e in result["errors"])]
    return "\n".join(lines) + "\n"
