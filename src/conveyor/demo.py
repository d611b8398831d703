"""Demo tasks: what ``make run`` shows, and a worker app to try (``conveyor.demo:app``)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from conveyor.app import Conveyor
from conveyor.domain.outcomes import Retry
from conveyor.runtime.context import JobContext

app = Conveyor()


@app.task(name="demo.resize", queue="images", max_attempts=3)
async def resize(image: str, steps: int = 5, ctx: JobContext | None = None) -> dict[str, Any]:
    """Pretend to resize an image, reporting progress at each step."""
    for step in range(1, steps + 1):
        await asyncio.sleep(0.2)
        if ctx is not None:
            ctx.progress(step / steps, f"step {step} of {steps}")
    return {"image": image, "sizes": [64, 256, 1024]}


@app.task(name="demo.flaky", queue="default", max_attempts=4)
def flaky(name: str, ctx: JobContext) -> str:
    """Fail the first attempt on purpose, to show retries (sync handler, in a thread)."""
    if ctx.attempt == 1:
        raise Retry(after=1.0, reason="the remote service was busy")
    return f"hello {name} on attempt {ctx.attempt}"


@app.task(name="demo.report", queue="default")
def report(rows: int, ctx: JobContext) -> dict[str, int]:
    """Build a small report and attach it to the job as a file."""
    data = [{"row": i, "value": random.randint(0, 100)} for i in range(rows)]  # noqa: S311
    ctx.attach("report.json", json.dumps(data, indent=1))
    ctx.note(f"report with {rows} rows attached")
    return {"rows": rows}


@app.task(name="demo.alert", queue="default", priority=0, immediate=True)
def alert(message: str) -> str:
    """An urgent job: priority 0 and immediate, so it gets a reserved slot."""
    return f"alerted: {message}"


def demo_requests(count: int) -> list[tuple[str, Any, dict[str, Any] | None]]:
    """A mix of jobs that shows each feature once or more."""
    requests: list[tuple[str, Any, dict[str, Any] | None]] = [
        ("demo.alert", {"message": "disk almost full"}, None),
        ("demo.flaky", {"name": "Ada"}, None),
        ("demo.report", {"rows": 25}, {"key": "report-1", "tags": ["reports"]}),
        ("demo.resize", {"image": "later.png", "steps": 3}, {"delay": 2.0}),
    ]
    for i in range(max(count - len(requests), 0)):
        requests.append(("demo.resize", {"image": f"photo-{i}.jpg", "steps": 4 + i % 4}, None))
    return requests[:count] if count < len(requests) else requests
