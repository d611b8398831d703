"""Portable SQL: one file of ``:name`` queries, adapted to each dialect by the loader."""

from __future__ import annotations

import re

import pytest

from conveyor.store.queries import load_portable, to_dialect

SQL = """-- a comment naming :ghost and 100%
SELECT a::text, '12:30', x FROM t
WHERE id = :id AND name LIKE 'a%' AND owner = :id AND n > :min_n"""


def test_sqlite_keeps_the_statement_without_its_comments() -> None:
    assert to_dialect(SQL, "sqlite") == SQL.split("\n", 1)[1]


def test_postgres_gets_psycopg_parameters_and_doubled_percent_signs() -> None:
    assert to_dialect(SQL, "postgres") == (
        "SELECT a::text, '12:30', x FROM t\n"
        "WHERE id = %(id)s AND name LIKE 'a%%' AND owner = %(id)s AND n > %(min_n)s"
    )


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        to_dialect(SQL, "mysql")


def test_the_accounts_queries_load_alike_for_both_dialects() -> None:
    sqlite = load_portable("accounts.sql", "sqlite")
    postgres = load_portable("accounts.sql", "postgres")
    assert sqlite.keys() == postgres.keys()
    for name, sql in sqlite.items():
        assert sql and "--" not in sql, name
        params = set(re.findall(r"(?<![:\w]):(\w+)", sql))
        assert set(re.findall(r"%\((\w+)\)s", postgres[name])) == params, name
        assert "::" not in sql, f"{name}: no casts in portable SQL"
