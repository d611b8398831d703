"""Read-only queries for the web dashboard, once for both databases (``dashboard.sql``
through the store's ``run_sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.store.portable import PortableStore

SUCCEEDED = "job.succeeded"
DISCARDED = "job.discarded"


@dataclass(frozen=True, slots=True)
class MinuteCount:
    """How many jobs completed and were discarded in one minute."""

    minute: datetime
    completed: int
    discarded: int


class DashboardQueries(PortableStore):
    """The dashboard's own reads of one store."""

    sql_file = "dashboard.sql"

    async def finished_per_minute(
        self, tenant_id: str, now: datetime, minutes: int = 60
    ) -> list[MinuteCount]:
        """Completed and discarded jobs of a tenant for each of the last ``minutes``
        minutes (the current one last), zero for quiet minutes."""
        first = int(now.timestamp() // 60) - minutes + 1
        since = datetime.fromtimestamp(first * 60, UTC)
        query = self._sql[f"finished_per_minute_{self.store.dialect}"]
        params: dict[str, Any] = {"tenant_id": tenant_id, "since": since}
        (rows,) = await self.store.run_sql([(query, params)], write=False)
        counts: dict[tuple[int, str], int] = {
            (int(row["minute"]), str(row["type"])): int(row["n"]) for row in rows
        }
        return [
            MinuteCount(
                since + timedelta(minutes=offset),
                counts.get((first + offset, SUCCEEDED), 0),
                counts.get((first + offset, DISCARDED), 0),
            )
            for offset in range(minutes)
        ]
