"""``conveyor demo``: the engine at work on SQLite, live in the terminal."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.live import Live

from conveyor.cli.context import console, fail, options
from conveyor.cli.render import jobs_table
from conveyor.domain.errors import ConveyorError
from conveyor.domain.jobs import Job
from conveyor.domain.lifecycle import TERMINAL


async def _watch(app_jobs: list[Job], refresh: float) -> None:
    from conveyor.demo import app

    ids = [j.id for j in app_jobs]
    with Live(jobs_table(app_jobs), console=console, refresh_per_second=8) as live:
        while True:
            current = [await app.aio.get_job(i) for i in ids]
            live.update(jobs_table(current))
            if all(j.state in TERMINAL for j in current):
                break
            await asyncio.sleep(refresh)
    console.print()


async def _demo(count: int, concurrency: int, forever: bool) -> None:
    from conveyor.demo import app, demo_requests

    store = await app.aio.store()
    jobs = await app.aio.enqueue_many(demo_requests(count))
    console.print(f"enqueued {len(jobs)} demo jobs into {app.database_url}")
    stop = asyncio.Event()
    settings = app.worker_settings(concurrency=concurrency, heartbeat_seconds=1.0)
    worker = asyncio.create_task(app.aio.run_worker(settings, stop))
    try:
        await _watch(jobs, 0.25)
        if forever:
            console.print("all demo jobs finished; the worker keeps running (Ctrl-C to stop)")
            await worker
    finally:
        stop.set()
        await worker
        counts = await store.count_jobs(app.tenant)
        await app.aio.close()
    done = sum(n for (_, state), n in counts.items() if state in TERMINAL)
    console.print(f"done: {done} finished jobs in the database. Try:")
    for hint in (
        "conveyor jobs ls",
        "conveyor jobs stats",
        "conveyor jobs show 3",
        "conveyor jobs artifacts 3",
        "conveyor events tail --no-follow",
    ):
        console.print(f"  .venv/bin/{hint}")


def demo(
    ctx: typer.Context,
    jobs: Annotated[int, typer.Option(min=1, max=10_000, help="How many demo jobs.")] = 12,
    concurrency: Annotated[int, typer.Option(min=1, help="Worker slots.")] = 4,
    forever: Annotated[bool, typer.Option(help="Keep the worker running afterwards.")] = False,
) -> None:
    """Create the database if needed, enqueue demo jobs and run them with a live view."""
    from conveyor.demo import app
    from conveyor.store import store_from_url

    app.database_url = options(ctx).database_url

    async def upgrade() -> list[int]:
        store = store_from_url(app.database_url)
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    try:
        applied = asyncio.run(upgrade())
        if applied:
            console.print(f"database ready (migrations {applied} applied)")
        asyncio.run(_demo(jobs, concurrency, forever))
    except ConveyorError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        console.print("stopped")
