"""Running one handler and turning what happened into an Outcome value."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import traceback
from concurrent.futures import Executor
from typing import Any

from conveyor.domain.jobs import ErrorInfo, Job
from conveyor.domain.outcomes import Completed, Discard, Discarded, Failed, Outcome, Retry
from conveyor.runtime.context import JobContext
from conveyor.runtime.registry import RegisteredTask

MAX_TRACEBACK = 20_000


def error_info(exc: BaseException) -> ErrorInfo:
    """Type, message and (capped) traceback of an exception."""
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
    return ErrorInfo(name, str(exc) or name, text)


def _arguments(task: RegisteredTask, job: Job, ctx: JobContext) -> dict[str, Any]:
    if not isinstance(job.payload, dict):
        raise TypeError(f"the payload of task {task.name!r} must be a JSON object")
    kwargs = dict(job.payload)
    if task.wants_context:
        kwargs["ctx"] = ctx
    return kwargs


async def _call(task: RegisteredTask, kwargs: dict[str, Any], pool: Executor) -> Any:
    if task.is_async:
        return await task.handler(**kwargs)
    call = functools.partial(contextvars.copy_context().run, task.handler, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)


def _check_result(result: Any) -> Any:
    if result is not None:  # most handlers return nothing: no encoding to try
        json.dumps(result, allow_nan=False)
    return result


async def execute(task: RegisteredTask, job: Job, ctx: JobContext, pool: Executor) -> Outcome:
    """Run the handler once; every way it can end becomes an Outcome, never an exception.

    The timeout is enforced on async handlers by cancelling them. A sync handler
    runs in a thread, which cannot be interrupted: on timeout the attempt fails
    at once and ``ctx.cancelled`` turns true, but the thread runs on until it
    returns or checks the flag (a cooperative timeout).
    """
    try:
        kwargs = _arguments(task, job, ctx)
        if job.timeout is None:
            return Completed(_check_result(await _call(task, kwargs, pool)))
        result = await _call_with_timeout(task, kwargs, pool, ctx, job.timeout)
        return Completed(_check_result(result))
    except Retry as exc:
        return Failed(error_info(exc), retry_in=exc.after)
    except Discard as exc:
        return Discarded(error_info(exc))
    except _Expired:
        return Failed(ErrorInfo("TimeoutError", f"the job ran longer than {job.timeout} s"))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return Failed(error_info(exc))


class _Expired(Exception):
    """The attempt's timeout passed (distinct from a TimeoutError the handler raised)."""


async def _call_with_timeout(
    task: RegisteredTask, kwargs: dict[str, Any], pool: Executor, ctx: JobContext, seconds: float
) -> Any:
    # Flag the context just before the timeout cancels the handler, so its cleanup
    # code (and a sync handler's thread, which cannot be cancelled) can see why.
    flag = asyncio.get_running_loop().call_later(seconds, ctx.cancel, "timed out")
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await _call(task, kwargs, pool)
    except TimeoutError:
        if deadline.expired():
            raise _Expired from None
        raise
    finally:
        flag.cancel()
