"""Conveyor on SQLite (synchronous=FULL) and on PostgreSQL, through its public API."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from typing import ClassVar

from benchmarks.config import CONVEYOR_BATCH, CONVEYOR_CONCURRENCY
from benchmarks.stamps import STAMP_ENV
from benchmarks.systems.base import PostgresReader, Progress, System
from benchmarks.workers import BIN
from conveyor.app import Conveyor

NOOP = "bench.noop"
STAMP = "bench.stamp"
SYNCHRONOUS = "FULL"  # the durable default


class _Conveyor(System):
    batch_api = "app.aio.enqueue_many"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._app: Conveyor | None = None

    @property
    def app(self) -> Conveyor:
        if self._app is None:
            raise RuntimeError("not open")
        return self._app

    async def install(self) -> None:
        await asyncio.to_thread(
            subprocess.run,
            [str(BIN / "conveyor"), "--database-url", self.url, "db", "upgrade"],
            check=True,
            capture_output=True,
        )

    async def open(self) -> None:
        self._app = Conveyor(self.url, sqlite_synchronous=SYNCHRONOUS)
        await self._app.aio.store()

    async def close(self) -> None:
        if self._app is not None:
            await self._app.aio.close()
            self._app = None

    async def enqueue_noop(self) -> None:
        await self.app.aio.enqueue(NOOP, {})

    async def enqueue_noops(self, count: int) -> None:
        await self.app.aio.enqueue_many([(NOOP, {}, None)] * count)

    async def enqueue_stamp(self, seq: int) -> None:
        await self.app.aio.enqueue(STAMP, {"seq": seq})

    def worker_command(self) -> list[str]:
        return [
            str(BIN / "conveyor"),
            "worker",
            "benchmarks.apps:app",
            "--concurrency",
            str(CONVEYOR_CONCURRENCY),
            "--batch",
            str(CONVEYOR_BATCH),
        ]

    def worker_env(self) -> dict[str, str]:
        return {
            "CONVEYOR_DATABASE_URL": self.url,
            "CONVEYOR_SQLITE_SYNCHRONOUS": SYNCHRONOUS,
            STAMP_ENV: str(self.workdir / "stamps.txt"),
        }


class ConveyorSQLite(_Conveyor):
    """Conveyor's embedded store: one SQLite file in WAL mode, synchronous=FULL."""

    name: ClassVar[str] = "conveyor-sqlite"
    postgres: ClassVar[bool] = False

    def _read(self, sql: str) -> tuple[object, ...]:
        path = self.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, timeout=10)
        try:
            row: tuple[object, ...] = conn.execute(sql).fetchone()
        finally:
            conn.close()
        return row

    async def done_count(self) -> int:
        sql = "SELECT count(*) FROM jobs WHERE tenant_id = 'default' AND state = 'completed'"
        row = await asyncio.to_thread(self._read, sql)
        return int(str(row[0]))

    async def progress(self) -> Progress:
        sql = (
            "SELECT count(*) FILTER (WHERE state = 'completed'), min(started_at), "
            "max(finished_at) FROM jobs WHERE task = 'bench.noop'"
        )
        done, first, last = await asyncio.to_thread(self._read, sql)
        return Progress(
            int(str(done)),
            None if first is None else float(str(first)),
            None if last is None else float(str(last)),
        )


class ConveyorPostgres(_Conveyor):
    """Conveyor's PostgreSQL store."""

    name: ClassVar[str] = "conveyor-postgres"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._reader = PostgresReader(self.url)

    async def open(self) -> None:
        await super().open()
        await self._reader.open()

    async def close(self) -> None:
        await self._reader.close()
        await super().close()

    async def refresh_statistics(self) -> None:
        await self._reader.execute("ANALYZE")

    async def done_count(self) -> int:
        return await self._reader.count(
            "SELECT count(*) FROM jobs WHERE tenant_id = 'default' AND state = 'completed'"
        )

    async def progress(self) -> Progress:
        return await self._reader.progress(
            "SELECT count(*) FILTER (WHERE state = 'completed'), "
            "extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)) "
            "FROM jobs WHERE task = 'bench.noop'"
        )
