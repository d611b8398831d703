"""Where the CPU went during a measurement, from ``/proc`` (Linux; ``None`` elsewhere).

Cores busy = CPU seconds over wall seconds, for this process (the load generator),
the server process (all its threads), the PostgreSQL backends serving its
database and the whole machine. What the machine spent beyond those was other work sharing it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process, all threads; ``None`` if it is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # from field 3 (state) of proc(5)
    return (int(fields[11]) + int(fields[12])) / _TICK


def backends_cpu(database: str | None) -> float | None:
    """CPU seconds of the live PostgreSQL backends connected to ``database``.

    Backends show ``postgres: <cluster>: <user> <database> <client> <state>`` as
    their command line; the server's shared processes (WAL writer, checkpointer)
    and other databases' backends are not counted. ``None`` without a database.
    """
    if database is None or not _PROC.is_dir():
        return None
    total = 0.0
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres:") and f" {database} " in command:
            total += process_cpu(int(entry.name)) or 0.0
    return total


def machine_busy() -> float | None:
    """CPU seconds the machine spent busy since boot (not idle, not waiting on I/O)."""
    try:
        first = (_PROC / "stat").read_text().splitlines()[0]
    except OSError:
        return None
    ticks = [int(x) for x in first.split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


@dataclass(frozen=True, slots=True)
class CpuMark:
    """CPU seconds used so far by each party, at one moment."""

    wall: float
    generator: float
    server: float | None
    postgres: float | None
    machine: float | None

    @classmethod
    def now(cls, server_pid: int, database: str | None) -> CpuMark:
        """The counters now; ``database``: the PostgreSQL database the server uses."""
        return cls(
            time.perf_counter(),
            time.process_time(),
            process_cpu(server_pid),
            backends_cpu(database),
            machine_busy(),
        )


@dataclass(frozen=True, slots=True)
class CoresBusy:
    """Average cores each party kept busy between two marks."""

    server: float | None
    generator: float | None
    postgres: float | None
    machine: float | None


def _rate(before: float | None, after: float | None, seconds: float) -> float | None:
    return None if before is None or after is None else max(0.0, after - before) / seconds


def cores_busy(before: CpuMark, after: CpuMark) -> CoresBusy:
    """What each party used between ``before`` and ``after``, in cores."""
    seconds = after.wall - before.wall
    return CoresBusy(
        server=_rate(before.server, after.server, seconds),
        generator=_rate(before.generator, after.generator, seconds),
        postgres=_rate(before.postgres, after.postgres, seconds),
        machine=_rate(before.machine, after.machine, seconds),
    )
