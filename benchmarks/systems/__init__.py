"""The systems under test, each behind the same small interface (:class:`System`)."""

from __future__ import annotations

from benchmarks.systems.base import Progress, System
from benchmarks.systems.celery import CeleryRabbitMQ
from benchmarks.systems.conveyor import ConveyorPostgres, ConveyorSQLite
from benchmarks.systems.pgqueuer import PgQueuer, PgQueuerBatch100
from benchmarks.systems.procrastinate import Procrastinate

REGISTRY: dict[str, type[System]] = {
    cls.name: cls
    for cls in (
        ConveyorSQLite,
        ConveyorPostgres,
        PgQueuer,
        Procrastinate,
        CeleryRabbitMQ,
        PgQueuerBatch100,
    )
}

__all__ = ["REGISTRY", "Progress", "System"]
