"""Named SQL: each dialect keeps its queries in one ``queries.sql`` file.

A section starts with a line ``-- name: claim_jobs`` and runs to the next one.
Both dialects define the same names (a unit test checks), so the two versions of
each hot path can be read side by side. Queries off the hot path live once, in a
portable file (``accounts.sql``) that :func:`load_portable` adapts to each dialect.

Migrations are numbered SQL files per dialect (:func:`migration_files`); a store
refuses to run on an older schema (:func:`require_schema`).
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from conveyor.domain.errors import SchemaOutdated

_SECTION = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^\s*--.*\n?", re.MULTILINE)
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


def parse_sections(text: str) -> dict[str, str]:
    """Split a SQL file into ``{name: sql}`` sections."""
    parts = _SECTION.split(text)
    sections: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in sections:
            raise ValueError(f"query {name!r} is defined twice")
        sections[name] = body.strip()
    return sections


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """The named queries of ``dialect`` (``sqlite`` or ``postgres``)."""
    text = files("conveyor.store").joinpath(dialect, "queries.sql").read_text("utf-8")
    return parse_sections(text)


@cache
def load_portable(filename: str, dialect: str) -> dict[str, str]:
    """The named queries of a portable file in this package, for ``dialect``.

    The file uses ``:name`` parameters and no dialect-specific SQL. Whole-line
    comments are dropped; for ``postgres`` a literal ``%`` is doubled and
    ``:name`` becomes psycopg's ``%(name)s``.
    """
    text = files("conveyor.store").joinpath(filename).read_text("utf-8")
    sections = parse_sections(text)
    return {name: to_dialect(sql, dialect) for name, sql in sections.items()}


def to_dialect(sql: str, dialect: str) -> str:
    """One portable statement (``:name`` parameters) as ``dialect`` runs it."""
    sql = _COMMENT_LINE.sub("", sql).strip()
    if dialect == "sqlite":
        return sql
    if dialect == "postgres":
        return _PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%"))
    raise ValueError(f"unknown dialect {dialect!r}")


def migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for each migration of ``dialect``, in order."""
    folder = files("conveyor.store").joinpath(dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text("utf-8")))
    return sorted(found)


def require_schema(dialect: str, current: int) -> None:
    """Raise ``SchemaOutdated`` unless schema version ``current`` has every migration
    of ``dialect``."""
    required = migration_files(dialect)[-1][0]
    if current < required:
        raise SchemaOutdated(current, required)
