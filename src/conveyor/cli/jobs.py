"""``conveyor enqueue`` and ``conveyor jobs ...``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from conveyor.cli.context import console, fail, run_with_jobs
from conveyor.cli.render import jobs_table, state_text, stats_table, to_json
from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import JobFilter
from conveyor.domain.lifecycle import JobState
from conveyor.services.jobs import JobService

jobs_app = typer.Typer(help="List, inspect, edit, retry and cancel jobs.", no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def parse_payload(text: str) -> Any:
    """The ``--payload`` option as JSON, or a clear error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "payload", f"is not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 date-time with a zone."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "run_at", "must be an ISO 8601 date-time, e.g. 2026-01-31T09:00:00+00:00"
        ) from None


def _given(options: dict[str, Any], payload: str | None, run_at: str | None) -> dict[str, Any]:
    """The options set on the command line, with ``--payload`` and ``--run-at`` parsed;
    bad input ends the command with one line and exit code 2."""
    try:
        options["run_at"] = parse_time(run_at)
        options["payload"] = None if payload is None else parse_payload(payload)
    except InvalidInput as exc:
        fail(exc.message)
    return {k: v for k, v in options.items() if v is not None}


def enqueue(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="The task's name.")],
    payload: Annotated[str, typer.Option(help="The payload, as JSON.")] = "{}",
    queue: Annotated[str | None, typer.Option(help="Queue (default: the task's).")] = None,
    priority: Annotated[int | None, typer.Option(help="0 (highest) to 9 (lowest).")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds to wait before running.")] = None,
    run_at: Annotated[str | None, typer.Option(help="When to run (ISO 8601).")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Attempts before dead-letter.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds an attempt may run.")] = None,
    message_id: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    key: Annotated[str | None, typer.Option(help="Business key.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeatable).")] = None,
    assignee: Annotated[str | None, typer.Option(help="Who the job is for.")] = None,
    content_type: Annotated[str | None, typer.Option(help="Payload content type.")] = None,
    content_encoding: Annotated[str | None, typer.Option(help="Payload encoding.")] = None,
    as_json: AsJson = False,
) -> None:
    """Create a job."""
    options: dict[str, Any] = {
        "queue": queue,
        "priority": priority,
        "delay": delay,
        "max_attempts": max_attempts,
        "timeout": timeout,
        "message_id": message_id,
        "key": key,
        "tags": tag,
        "assignee": assignee,
        "content_type": content_type,
        "content_encoding": content_encoding,
    }
    options = _given(options, payload, run_at)
    body = options.pop("payload", None)

    async def create(jobs: JobService) -> Any:
        return await jobs.enqueue(task, body, options)

    job = run_with_jobs(ctx, create)
    if as_json:
        console.print_json(to_json(job))
    else:
        console.print(f"job [bold]{job.id}[/] {job.task} is {state_text(job.state)} on {job.queue}")


@jobs_app.command("ls")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only jobs of this queue.")] = None,
    task: Annotated[str | None, typer.Option(help="Only jobs of this task.")] = None,
    key: Annotated[str | None, typer.Option(help="Only jobs with this business key.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only jobs with this tag.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many.")] = 50,
    before: Annotated[int | None, typer.Option(help="Page: jobs older than this id.")] = None,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first."""
    filters = JobFilter(
        state=state, queue=queue, task=task, key=key, tag=tag, limit=limit, after_id=before
    )

    async def fetch(jobs: JobService) -> Any:
        return await jobs.list_jobs(filters)

    found = run_with_jobs(ctx, fetch)
    if as_json:
        console.print_json(to_json(found))
    elif not found:
        console.print("no jobs match")
    else:
        console.print(jobs_table(found))


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: int, as_json: AsJson = False) -> None:
    """A job with its attempts, events and artifacts."""

    async def fetch(jobs: JobService) -> Any:
        return await jobs.detail(job_id)

    detail = run_with_jobs(ctx, fetch)
    if as_json:
        console.print_json(to_json(detail))
        return
    job = detail.job
    console.print(jobs_table([job]))
    console.print(f"payload: {json.dumps(job.payload)}", highlight=False, soft_wrap=True)
    console.print(
        f"headers: content_type={job.content_type} content_encoding={job.content_encoding}"
        f" message_id={job.message_id} key={job.key} tags={list(job.tags)}"
    )
    if job.result is not None:
        console.print(f"result: {json.dumps(job.result)}", highlight=False, soft_wrap=True)
    for attempt in detail.attempts:
        error = f" {attempt.error.type}: {attempt.error.message}" if attempt.error else ""
        console.print(f"attempt {attempt.attempt} on {attempt.worker_id}: {attempt.outcome}{error}")
    for event in detail.events:
        console.print(
            f"  {event.created_at:%H:%M:%S.%f} {event.type} {event.data}", highlight=False
        )
    for artifact in detail.artifacts:
        console.print(f"artifact {artifact.name} {artifact.size} bytes sha256={artifact.sha256}")


@jobs_app.command("edit")
def edit(
    ctx: typer.Context,
    job_id: int,
    payload: Annotated[str | None, typer.Option(help="The new payload, as JSON.")] = None,
    run_at: Annotated[str | None, typer.Option(help="When to run (ISO 8601).")] = None,
    delay: Annotated[float | None, typer.Option(help="Run this many seconds from now.")] = None,
    priority: Annotated[int | None, typer.Option(help="0 (highest) to 9 (lowest).")] = None,
    queue: Annotated[str | None, typer.Option(help="Move it to this queue.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Attempts before dead-letter.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds an attempt may run.")] = None,
    key: Annotated[str | None, typer.Option(help="Business key.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Replace the tags (repeatable).")] = None,
    assignee: Annotated[str | None, typer.Option(help="Who the job is for.")] = None,
    clear: Annotated[
        list[str] | None, typer.Option(help="Empty a field: key, assignee, timeout or tags.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change a job that has not started yet (scheduled or available)."""
    options: dict[str, Any] = {
        "delay": delay,
        "priority": priority,
        "queue": queue,
        "max_attempts": max_attempts,
        "timeout": timeout,
        "key": key,
        "tags": tag,
        "assignee": assignee,
    }
    fields = _given(options, payload, run_at)
    fields.update(dict.fromkeys(clear or ()))
    if not fields:
        fail("nothing to change: give --payload, --run-at, --priority or another option")

    async def act(jobs: JobService) -> Any:
        return await jobs.edit(job_id, fields)

    job = run_with_jobs(ctx, act)
    if as_json:
        console.print_json(to_json(job))
    else:
        console.print(
            f"job {job.id} is {state_text(job.state)}, due {job.run_at:%Y-%m-%d %H:%M:%S}"
        )


@jobs_app.command("retry")
def retry(ctx: typer.Context, job_id: int) -> None:
    """Run a completed, discarded or cancelled job again (history is kept)."""

    async def act(jobs: JobService) -> Any:
        return await jobs.retry(job_id)

    job = run_with_jobs(ctx, act)
    console.print(f"job {job.id} is {state_text(job.state)} again")


@jobs_app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: int,
    reason: Annotated[str, typer.Option(help="Why, for the history.")] = "cancelled from the CLI",
) -> None:
    """Cancel a job that has not finished."""

    async def act(jobs: JobService) -> Any:
        return await jobs.cancel(job_id, reason)

    job = run_with_jobs(ctx, act)
    console.print(f"job {job.id} is {state_text(job.state)}")


@jobs_app.command("stats")
def stats(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Job counts by queue and state."""

    async def fetch(jobs: JobService) -> Any:
        return await jobs.stats()

    counts = run_with_jobs(ctx, fetch)
    if as_json:
        nested: dict[str, dict[str, int]] = {}
        for (queue, state), n in counts.items():
            nested.setdefault(queue, {})[str(state)] = n
        console.print_json(json.dumps(nested))
    else:
        console.print(stats_table(counts))


@jobs_app.command("artifacts")
def artifacts(ctx: typer.Context, job_id: int, as_json: AsJson = False) -> None:
    """The files a job produced."""

    async def fetch(jobs: JobService) -> Any:
        return await jobs.artifacts(job_id)

    found = run_with_jobs(ctx, fetch)
    if as_json:
        console.print_json(to_json(found))
        return
    if not found:
        console.print(f"job {job_id} has no artifacts")
    for a in found:
        console.print(f"{a.name}\t{a.size} bytes\tsha256={a.sha256}\t{a.path}", highlight=False)
