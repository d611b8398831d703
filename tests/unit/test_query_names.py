"""Both dialects name the same queries, so each hot path can be read side by side."""

from __future__ import annotations

from conveyor.store.queries import load_queries

SQLITE_STEPS = {"insert_enqueued_events", "insert_started_events"}
"""SQLite has no data-modifying WITH: what a PostgreSQL statement does in one of its
parts (the events of ``insert_job`` and ``claim_jobs``) is a statement of its own there."""


def test_sqlite_and_postgres_define_the_same_query_names() -> None:
    sqlite = set(load_queries("sqlite"))
    postgres = set(load_queries("postgres"))
    assert sqlite - postgres == SQLITE_STEPS, "only in sqlite/queries.sql"
    assert postgres - sqlite == set(), "only in postgres/queries.sql"


def test_every_query_has_a_body() -> None:
    for dialect in ("sqlite", "postgres"):
        empty = [name for name, sql in load_queries(dialect).items() if not sql.strip()]
        assert empty == [], dialect
