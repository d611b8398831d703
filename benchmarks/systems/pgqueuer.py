"""pgqueuer (asyncpg when installed, as its CLI prefers), one worker with its default batch."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from pgqueuer import Queries

from benchmarks.apps_pgqueuer import URL_ENV, connect_driver
from benchmarks.config import PGQUEUER_BATCH
from benchmarks.stamps import STAMP_ENV
from benchmarks.systems.base import PostgresReader, Progress, System


class PgQueuer(System):
    """pgqueuer: jobs are deleted when done and logged in ``pgqueuer_log``."""

    name: ClassVar[str] = "pgqueuer"
    batch_api = "Queries.enqueue(lists)"
    worker_batch: ClassVar[int] = PGQUEUER_BATCH

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader = PostgresReader(self.url)
        self._driver: Any = None
        self._queries: Queries | None = None

    @property
    def queries(self) -> Queries:
        if self._queries is None:
            raise RuntimeError("not open")
        return self._queries

    async def install(self) -> None:
        driver, close = await connect_driver(self.url)
        try:
            await Queries(driver).install()
        finally:
            await close()

    async def open(self) -> None:
        driver, self._close_driver = await connect_driver(self.url)
        self._queries = Queries(driver)
        await self._reader.open()

    async def close(self) -> None:
        await self._reader.close()
        if self._queries is not None:
            await self._close_driver()
            self._queries = None

    async def enqueue_noop(self) -> None:
        await self.queries.enqueue("noop", None)

    async def enqueue_noops(self, count: int) -> None:
        await self.queries.enqueue(["noop"] * count, [None] * count, [0] * count)

    async def enqueue_stamp(self, seq: int) -> None:
        await self.queries.enqueue("stamp", str(seq).encode())

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.apps_pgqueuer", str(self.worker_batch)]

    def worker_env(self) -> dict[str, str]:
        return {URL_ENV: self.url, STAMP_ENV: str(self.workdir / "stamps.txt")}

    async def refresh_statistics(self) -> None:
        await self._reader.execute("ANALYZE")

    async def done_count(self) -> int:
        return await self._reader.count(
            "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
        )

    async def progress(self) -> Progress:
        return await self._reader.progress(
            "SELECT count(*) FILTER (WHERE status = 'successful'), "
            "extract(epoch FROM min(created) FILTER (WHERE status = 'picked')), "
            "extract(epoch FROM max(created) FILTER (WHERE status = 'successful')) "
            "FROM pgqueuer_log WHERE entrypoint = 'noop'"
        )


class PgQueuerBatch100(PgQueuer):
    """pgqueuer with ``batch_size=100`` (an extra row: Conveyor's worker claims 100)."""

    name: ClassVar[str] = "pgqueuer-batch100"
    worker_batch: ClassVar[int] = 100
