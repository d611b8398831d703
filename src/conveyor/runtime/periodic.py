"""Schedules declared in code: ``@app.periodic(cron="0 19 * * *", tz="America/Sao_Paulo")``.

The declarations become :class:`ScheduleSpec` records at import time (so a bad cron
expression fails at once, naming the problem) and are synced into the database when
a worker or a server starts: created once, updated when the code changed, marked as
code-owned so the API refuses to edit them (pause and resume still work).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import InvalidInput
from conveyor.domain.schedules import ScheduleSpec, schedule_spec
from conveyor.domain.timing import Timing, timing_from
from conveyor.runtime.registry import Handler, TaskRegistry
from conveyor.services.schedules import ScheduleService, SyncReport
from conveyor.store import schedules_for
from conveyor.store.protocol import Store


def periodic_timing(cron_expression: str | None, interval: float | str | None, tz: str) -> Timing:
    """The timing of a declaration: exactly one of a cron expression or an interval."""
    if (cron_expression is None) == (interval is None):
        raise InvalidInput("periodic", "give exactly one of cron= or every=")
    return timing_from({"cron": cron_expression, "interval": interval}, tz)


def declare(
    registry: TaskRegistry,
    handler: Handler,
    timing: Timing,
    *,
    name: str | None = None,
    payload: Any = None,
    **options: Any,
) -> ScheduleSpec:
    """The schedule of a task function already declared with ``@app.task``."""
    task = registry.name_of(handler)
    if task is None:
        raise InvalidInput(
            "periodic",
            f"{getattr(handler, '__qualname__', handler)!r} is not a task: "
            "put @app.periodic above @app.task",
        )
    return schedule_spec(name or task, timing, task, payload, **options)


def check_unique(specs: Sequence[ScheduleSpec], spec: ScheduleSpec) -> None:
    """Refuse a second declaration with the same schedule name."""
    if any(other.name == spec.name for other in specs):
        raise InvalidInput(
            "name", f"schedule {spec.name!r} is declared twice; give each one a name="
        )


async def sync_declared(
    store: Store, tenant_id: str, specs: Sequence[ScheduleSpec], clock: Callable[[], datetime]
) -> SyncReport:
    """Create or update the declared schedules in ``tenant_id`` (as the code's owner)."""
    principal = Principal(tenant_id=tenant_id, scopes=frozenset(Scope), email="code")
    return await ScheduleService(schedules_for(store), principal, clock).sync_code(specs)
