"""``conveyor queues ...``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from conveyor.cli.context import console, run_with_jobs
from conveyor.cli.render import queues_table, to_json
from conveyor.services.jobs import JobService

queues_app = typer.Typer(help="List, pause, resume and limit queues.", no_args_is_help=True)


@queues_app.command("ls")
def list_queues(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Queues with their settings and job counts."""

    async def fetch(jobs: JobService) -> Any:
        return await jobs.queues()

    found = run_with_jobs(ctx, fetch)
    if as_json:
        console.print_json(to_json(found))
    elif not found:
        console.print("no queues yet")
    else:
        console.print(queues_table(found))


def _set_paused(ctx: typer.Context, name: str, paused: bool) -> None:
    async def act(jobs: JobService) -> Any:
        return await jobs.pause_queue(name, paused)

    run_with_jobs(ctx, act)
    console.print(f"queue {name} is {'paused' if paused else 'running'}")


@queues_app.command("pause")
def pause(ctx: typer.Context, name: str) -> None:
    """Stop workers from starting this queue's jobs (running ones finish)."""
    _set_paused(ctx, name, True)


@queues_app.command("resume")
def resume(ctx: typer.Context, name: str) -> None:
    """Let workers start this queue's jobs again."""
    _set_paused(ctx, name, False)


@queues_app.command("limit")
def limit(
    ctx: typer.Context,
    name: str,
    concurrency: Annotated[
        int | None, typer.Argument(min=0, help="Most jobs running at once; omit for no limit.")
    ] = None,
) -> None:
    """Cap how many of a queue's jobs run at once across all workers."""

    async def act(jobs: JobService) -> Any:
        return await jobs.limit_queue(name, concurrency)

    run_with_jobs(ctx, act)
    console.print(
        f"queue {name}: concurrency {concurrency if concurrency is not None else 'unlimited'}"
    )
