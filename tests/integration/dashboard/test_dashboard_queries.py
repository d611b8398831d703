"""The dashboard's own store queries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conveyor.domain.jobs import JobFilter
from conveyor.store.dashboard import HOUR, MINUTE, DashboardQueries
from conveyor.store.listing import compile_query, job_list_query
from tests.integration.dashboard.conftest import Dashboard

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Both stores."""
    return str(request.param)


async def test_finished_per_span_counts_completions_and_discards(dash: Dashboard) -> None:
    for _ in range(3):
        await dash.enqueue("alice", queue="q")
    await dash.enqueue("bob", queue="q")
    await dash.finish("acme", "q")
    await dash.finish("acme", "q")
    await dash.finish("acme", "q", failed=True)
    await dash.finish("globex", "q")
    now = dash.server.now()
    queries = DashboardQueries(dash.server.store)
    minutes = await queries.finished("acme", now, MINUTE, 60)
    assert len(minutes) == 60
    assert minutes[-1].start <= now < minutes[-1].start + MINUTE
    assert sum(m.completed for m in minutes) == 2
    assert sum(m.discarded for m in minutes) == 1
    hours = await queries.finished("acme", now, HOUR, 24)
    assert hours[-1].start <= now < hours[-1].start + HOUR
    assert (hours[-1].completed, hours[-1].discarded) == (2, 1)
    later = await queries.finished("acme", now + timedelta(hours=2), MINUTE, 60)
    assert sum(m.completed + m.discarded for m in later) == 0
    next_day = await queries.finished("acme", now + timedelta(days=1), HOUR, 24)
    assert sum(m.completed + m.discarded for m in next_day) == 0


async def test_finished_per_span_reads_only_the_partial_index(dash: Dashboard) -> None:
    """The throughput query's predicate implies the index's, so it skips other events."""
    queries = DashboardQueries(dash.server.store)
    query = queries._sql[f"finished_per_span_{dash.server.store.dialect}"]
    params = {"tenant_id": "acme", "since": dash.server.now() - timedelta(hours=1), "span": 60}
    if dash.server.store.dialect == "sqlite":
        steps = [(f"EXPLAIN QUERY PLAN {query}", params)]
    else:  # a tiny table: forbid the sequential scan, so only a usable index is chosen
        steps = [("SET LOCAL enable_seqscan = off", {}), (f"EXPLAIN {query}", params)]
    *_, rows = await dash.server.store.run_sql(steps)
    plan = "\n".join(str(value) for row in rows for value in row.values())
    assert "events_finished_by_tenant" in plan, plan


@pytest.mark.parametrize("filters", [JobFilter(limit=51), JobFilter(queue="mail", limit=51)])
async def test_a_job_list_page_walks_the_newest_first_index_without_sorting(
    dash: Dashboard, filters: JobFilter
) -> None:
    """A page of the list stops after its rows instead of sorting every job."""
    store = dash.server.store
    query, params = compile_query(store.dialect, job_list_query(store.dialect, "acme", filters))
    if store.dialect == "sqlite":
        steps = [(f"EXPLAIN QUERY PLAN {query}", params)]
    else:  # a tiny table: rule out the plans only a tiny table makes cheapest
        off = ("seqscan", "bitmapscan", "sort")
        steps = [(f"SET LOCAL enable_{name} = off", {}) for name in off]
        steps.append((f"EXPLAIN {query}", params))
    *_, rows = await store.run_sql(steps)
    plan = "\n".join(str(value) for row in rows for value in row.values())
    assert "jobs_newest" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
