"""procrastinate (psycopg 3), one worker process with a few concurrent async jobs."""

from __future__ import annotations

from typing import Any, ClassVar

import procrastinate

from benchmarks.apps_procrastinate import URL_ENV
from benchmarks.config import PROCRASTINATE_CONCURRENCY
from benchmarks.stamps import STAMP_ENV
from benchmarks.systems.base import PostgresReader, Progress, System
from benchmarks.workers import BIN


class Procrastinate(System):
    """procrastinate: jobs stay in ``procrastinate_jobs``; ``procrastinate_events`` has times."""

    name: ClassVar[str] = "procrastinate"
    batch_api = "batch_defer_async"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader = PostgresReader(self.url)
        self._app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.url))
        self._opened: Any = None

    async def install(self) -> None:
        async with self._app.open_async():
            await self._app.schema_manager.apply_schema_async()

    async def open(self) -> None:
        self._opened = self._app.open_async()
        await self._opened.__aenter__()
        await self._reader.open()

    async def close(self) -> None:
        await self._reader.close()
        if self._opened is not None:
            await self._opened.__aexit__(None, None, None)
            self._opened = None

    async def enqueue_noop(self) -> None:
        await self._app.configure_task("noop").defer_async()

    async def enqueue_noops(self, count: int) -> None:
        await self._app.configure_task("noop").batch_defer_async(*([{}] * count))

    async def enqueue_stamp(self, seq: int) -> None:
        await self._app.configure_task("stamp").defer_async(seq=seq)

    def worker_command(self) -> list[str]:
        return [
            str(BIN / "procrastinate"),
            "--log-level",
            "warning",
            "--app",
            "benchmarks.apps_procrastinate.app",
            "worker",
            "--concurrency",
            str(PROCRASTINATE_CONCURRENCY),
        ]

    def worker_env(self) -> dict[str, str]:
        return {URL_ENV: self.url, STAMP_ENV: str(self.workdir / "stamps.txt")}

    async def refresh_statistics(self) -> None:
        await self._reader.execute("ANALYZE")

    async def done_count(self) -> int:
        return await self._reader.count(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        )

    async def progress(self) -> Progress:
        return await self._reader.progress(
            "SELECT count(*) FILTER (WHERE e.type = 'succeeded'), "
            "extract(epoch FROM min(e.at) FILTER (WHERE e.type = 'started')), "
            "extract(epoch FROM max(e.at) FILTER (WHERE e.type = 'succeeded')) "
            "FROM procrastinate_events AS e JOIN procrastinate_jobs AS j ON j.id = e.job_id "
            "WHERE j.task_name = 'noop'"
        )
