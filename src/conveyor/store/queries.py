"""Named SQL: each dialect keeps its queries in one ``queries.sql`` file.

A section starts with a line ``-- name: claim_jobs`` and runs to the next one.
Both dialects define the same names (a unit test checks), so the two versions of
each hot path can be read side by side.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_SECTION = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


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


def migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for each migration of ``dialect``, in order."""
    folder = files("conveyor.store").joinpath(dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text("utf-8")))
    return sorted(found)
