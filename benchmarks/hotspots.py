"""Profile one worker process with py-spy while it processes pre-loaded no-op jobs.

``python -m benchmarks.hotspots conveyor-sqlite [--jobs 50000] [--rate 250]``

py-spy is not a project dependency: install it into the venv first
(``.venv/bin/uv pip install py-spy``). Sampling starts once the first job is done
(so start-up imports are left out) and stops when all are done. Prints, and writes
to ``benchmarks/results/profile-<system>.md``, the functions with the most samples
on top of the stack (self) and anywhere in it (total), and the split by thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import scenarios
from benchmarks.config import RESULTS_DIR
from benchmarks.databases import fresh_database
from benchmarks.systems import REGISTRY, System
from benchmarks.workers import BIN, WorkerProcess

# Frames where a thread waits rather than works (py-spy does not always see it idle).
WAITS = ("EpollSelector.select", "_worker (concurrent/futures/thread.py)", "Condition.wait")


@dataclass(slots=True)
class ThreadProfile:
    """Sample counts of one thread (pool threads together), by function."""

    samples: int = 0
    self_counts: Counter[str] = field(default_factory=Counter)
    total_counts: Counter[str] = field(default_factory=Counter)


def _frame_name(frame: dict[str, Any]) -> str:
    """``function (file)``: lines of one function are counted together."""
    path = str(frame.get("file", ""))
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{frame.get('name', '?')} ({path})"


def _thread_name(profile_name: str) -> str:
    """``Thread 27154 "conveyor-job_3"`` to ``conveyor-job`` (pool threads together)."""
    name = profile_name.partition('"')[2].rstrip('"') or profile_name
    return name.rstrip("0123456789").rstrip("_-") or name


def parse_speedscope(path: Path) -> dict[str, ThreadProfile]:
    """Count samples per thread and function in a py-spy speedscope file."""
    doc = json.loads(path.read_text())
    names = [_frame_name(f) for f in doc["shared"]["frames"]]
    threads: dict[str, ThreadProfile] = {}
    for profile in doc["profiles"]:
        thread = threads.setdefault(_thread_name(str(profile.get("name", "?"))), ThreadProfile())
        for stack in profile["samples"]:
            if not stack:
                continue
            thread.samples += 1
            thread.self_counts[names[stack[-1]]] += 1
            for name in {names[i] for i in stack}:
                thread.total_counts[name] += 1
    return threads


def _is_wait(name: str) -> bool:
    return any(name.startswith(w) or w in name for w in WAITS)


def _thread_section(name: str, thread: ThreadProfile, everything: int, top: int) -> list[str]:
    waiting = sum(c for n, c in thread.self_counts.items() if _is_wait(n))
    lines = [
        f"## Thread {name}: {100 * thread.samples / everything:.1f}% of samples "
        f"({100 * waiting / max(thread.samples, 1):.0f}% of them waiting in select/queue)",
        "",
        "| self % | total % | function |",
        "| ---: | ---: | --- |",
    ]
    roots = {n for n, c in thread.total_counts.items() if c >= 0.99 * thread.samples}
    ranked = [
        (n, c) for n, c in thread.total_counts.most_common() if n not in roots and not _is_wait(n)
    ]
    by_self = [(n, c) for n, c in thread.self_counts.most_common() if not _is_wait(n)]
    shown = dict(by_self[:top])
    for n, _ in ranked[:top]:
        shown.setdefault(n, thread.self_counts.get(n, 0))
    for n in sorted(shown, key=lambda k: (-thread.total_counts[k], -shown[k]))[: 2 * top]:
        lines.append(
            f"| {100 * thread.self_counts.get(n, 0) / everything:.1f} "
            f"| {100 * thread.total_counts[n] / everything:.1f} | `{n}` |"
        )
    return [*lines, ""]


def summary(system: str, threads: dict[str, ThreadProfile], top: int, note: str) -> str:
    """A markdown summary: per thread, functions by time in them and under them."""
    everything = sum(t.samples for t in threads.values())
    lines = [
        f"# Worker profile: {system}",
        "",
        f"{everything:,} samples ({note}). Percentages are of all samples of the process;",
        "self = on top of the stack, total = anywhere in it. Waits (select, an idle",
        "pool thread) and the frames under every sample of a thread are left out.",
        "",
    ]
    for name, thread in sorted(threads.items(), key=lambda kv: -kv[1].samples):
        lines += _thread_section(name, thread, everything, top)
    return "\n".join(lines)


def _start_py_spy(pid: int, output: Path, rate: int) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "speedscope",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop_py_spy(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _wait_for(system: System, worker: WorkerProcess, done: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while await system.done_count() < done and time.monotonic() < deadline:
        worker.check_alive()
        await asyncio.sleep(0.05)


async def record(cls: type[System], jobs: int, rate: int, output: Path, limit: float) -> float:
    """Pre-load, run the worker, sample it from the first job done to the last; jobs/s."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-profile-{cls.name}-"))
    try:
        async with fresh_database(cls.name, cls.postgres) as url:
            system = cls(url, workdir)
            await system.install()
            async with system:
                await scenarios.enqueue_batched(system, jobs, 1_000)
                worker = WorkerProcess(
                    system.worker_command(), system.worker_env(), workdir / "worker.log"
                )
                worker.start()
                try:
                    await _wait_for(system, worker, 1, 60)
                    spy = _start_py_spy(worker.pid, output, rate)
                    started = time.monotonic()
                    await _wait_for(system, worker, jobs, limit)
                    elapsed = time.monotonic() - started
                    done = await system.done_count()
                    _stop_py_spy(spy)
                finally:
                    worker.stop()
                return done / elapsed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotspots", description=__doc__)
    parser.add_argument("system", choices=sorted(REGISTRY))
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--output", type=Path, help="summary path (default: results/profile-*.md)")
    args = parser.parse_args()
    raw = Path(tempfile.gettempdir()) / f"profile-{args.system}.speedscope.json"
    per_second = asyncio.run(
        record(REGISTRY[args.system], args.jobs, args.rate, raw, args.max_seconds)
    )
    note = f"{args.rate}/s while processing at {per_second:,.0f} jobs/s under py-spy"
    text = summary(args.system, parse_speedscope(raw), args.top, note)
    out = args.output or RESULTS_DIR / f"profile-{args.system}.md"
    out.write_text(text)
    print(text)
    print(f"raw profile: {raw} (open in https://www.speedscope.app); summary: {out}")


if __name__ == "__main__":
    main()
