"""The procrastinate app the benchmark's worker runs.

``procrastinate --app benchmarks.apps_procrastinate.app worker``; the database
comes from ``BENCH_PG_URL``.
"""

from __future__ import annotations

import os

import procrastinate

from benchmarks.stamps import record_start

URL_ENV = "BENCH_PG_URL"

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get(URL_ENV, "")),
)


@app.task(name="noop")
async def noop() -> None:
    """Do nothing."""


@app.task(name="stamp")
async def stamp(seq: int) -> None:
    """Record when this job started."""
    record_start(seq)
