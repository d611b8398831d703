"""The Conveyor app the benchmark's worker runs: ``conveyor worker benchmarks.apps:app``.

The database comes from ``CONVEYOR_DATABASE_URL``, as for any Conveyor worker.
"""

from __future__ import annotations

from benchmarks.stamps import record_start
from conveyor.app import Conveyor

app = Conveyor()


@app.task(name="bench.noop")
async def noop() -> None:
    """Do nothing: the cost measured is the queue's own."""


@app.task(name="bench.stamp")
async def stamp(seq: int) -> None:
    """Record when this job started (enqueue-to-start latency)."""
    record_start(seq)
