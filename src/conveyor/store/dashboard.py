"""Read-only queries for the web dashboard, once for both databases (``dashboard.sql``
through the store's ``run_sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.store.portable import PortableStore

SUCCEEDED = "job.succeeded"
DISCARDED = "job.discarded"


MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SpanCount:
    """How many jobs completed and were discarded in one span of time."""

    start: datetime
    completed: int
    discarded: int


class DashboardQueries(PortableStore):
    """The dashboard's own reads of one store."""

    sql_file = "dashboard.sql"

    async def finished(
        self, tenant_id: str, now: datetime, span: timedelta, count: int
    ) -> list[SpanCount]:
        """Completed and discarded jobs of a tenant in each of the last ``count`` spans
        (whole minutes or hours since the epoch; the current one last), zero for quiet
        ones."""
        seconds = int(span.total_seconds())
        first = int(now.timestamp() // seconds) - count + 1
        since = datetime.fromtimestamp(first * seconds, UTC)
        query = self._sql[f"finished_per_span_{self.store.dialect}"]
        params: dict[str, Any] = {"tenant_id": tenant_id, "since": since, "span": seconds}
        (rows,) = await self.store.run_sql([(query, params)], write=False)
        counts: dict[tuple[int, str], int] = {
            (int(row["span"]), str(row["type"])): int(row["n"]) for row in rows
        }
        return [
            SpanCount(
                since + offset * span,
                counts.get((first + offset, SUCCEEDED), 0),
                counts.get((first + offset, DISCARDED), 0),
            )
            for offset in range(count)
        ]
