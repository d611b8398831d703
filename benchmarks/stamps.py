"""Start stamps: each latency job appends ``seq time.time()`` to a file the runner reads.

The file is named by ``BENCH_STAMP_FILE`` in the worker's environment. One short
``write`` of an ``O_APPEND`` file per job: lines from concurrent jobs never interleave.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STAMP_ENV = "BENCH_STAMP_FILE"


def record_start(seq: int) -> None:
    """Append this job's sequence number and its start time (``time.time()``)."""
    now = time.time()
    path = os.environ.get(STAMP_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{seq} {now:.6f}\n".encode())
    finally:
        os.close(fd)


def read_starts(path: Path) -> dict[int, float]:
    """Sequence number to start time, from a stamp file (the first start of each job)."""
    starts: dict[int, float] = {}
    if not path.exists():
        return starts
    for line in path.read_text().splitlines():
        seq, _, moment = line.partition(" ")
        starts.setdefault(int(seq), float(moment))
    return starts
