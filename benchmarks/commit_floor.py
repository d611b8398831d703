"""The floor under pickup latency: one durable commit of one row, on the same databases.

A job's pickup latency starts before its enqueue, and an enqueue returns only after
its commit is durable; so the disk's slow flushes of the log reach every queue's p99
pickup too. This measures a bare one-row ``INSERT`` commit, paced as the latency jobs
are, on PostgreSQL (autocommit, the server's own durability settings) and on
SQLite (WAL, ``synchronous=FULL``), on a fresh database each time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from benchmarks.databases import fresh_postgres, fresh_sqlite
from benchmarks.scenarios import paced, percentile

_TABLE = "CREATE TABLE floor (id integer PRIMARY KEY, note text NOT NULL)"
_INSERT = "INSERT INTO floor (note) VALUES ('x')"


@dataclass(frozen=True, slots=True)
class CommitLatency:
    """Percentiles of one durable single-row commit, in milliseconds."""

    database: str
    p50_ms: float
    p99_ms: float
    max_ms: float


async def _timed(count: int, gap: float, commit: Callable[[], object]) -> list[float]:
    """Run ``commit`` ``count`` times, ``gap`` seconds apart; each call's milliseconds.

    A blocking call is fine here: nothing else runs on this loop meanwhile.
    """
    took = []
    async for _ in paced(count, gap):
        started = time.perf_counter()
        commit()
        took.append((time.perf_counter() - started) * 1000)
    return took


def _summary(database: str, took: list[float]) -> CommitLatency:
    return CommitLatency(database, percentile(took, 0.50), percentile(took, 0.99), max(took))


async def postgres(count: int, gap: float) -> CommitLatency:
    """Paced single-row commits on a fresh PostgreSQL database."""
    async with fresh_postgres("floor") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_TABLE.replace("integer PRIMARY KEY", "bigserial PRIMARY KEY"))
            return _summary("postgresql", await _timed(count, gap, lambda: conn.execute(_INSERT)))


async def sqlite(count: int, gap: float) -> CommitLatency:
    """Paced single-row commits on a fresh SQLite file (WAL, synchronous=FULL)."""
    async with fresh_sqlite("floor") as url:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(_TABLE)
            return _summary("sqlite", await _timed(count, gap, lambda: conn.execute(_INSERT)))
        finally:
            conn.close()
