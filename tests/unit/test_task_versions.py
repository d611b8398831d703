"""Task settings changes: pure validation, the first version's starting point, and
the portable SQL the task store runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.tasks import (
    TaskChange,
    TaskSettings,
    TaskVersion,
    change_task,
    first_settings,
)
from conveyor.store.queries import load_portable

BASE = TaskChange(name="reports.build", queue="reports", priority=2, timeout=30.0)


def test_a_change_keeps_every_setting_it_does_not_name() -> None:
    changed = change_task(BASE, {"priority": 0, "immediate": True})
    assert changed == TaskChange(
        name="reports.build", queue="reports", priority=0, timeout=30.0, immediate=True
    )


def test_a_change_may_remove_the_timeout() -> None:
    assert change_task(BASE, {"timeout": None}).timeout is None


def test_whole_seconds_become_a_float_timeout() -> None:
    assert change_task(BASE, {"timeout": 5}).timeout == 5.0


@pytest.mark.parametrize(
    ("updates", "field"),
    [
        ({"queue": "has space"}, "queue"),
        ({"queue": None}, "queue"),
        ({"priority": 10}, "priority"),
        ({"priority": True}, "priority"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 1001}, "max_attempts"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"immediate": 1}, "immediate"),
        ({"description": "x" * 1001}, "description"),
        ({"description": "a\x00b"}, "description"),
        ({"handler": "x"}, "handler"),
        ({"name": "other"}, "name"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_field(updates: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        change_task(BASE, updates)
    assert caught.value.field == field


def test_a_first_version_starts_from_the_code_declared_settings() -> None:
    declared = TaskSettings("reports.build", queue="q", priority=1, max_attempts=9, timeout=2.0)
    assert first_settings("reports.build", declared) == TaskChange(
        name="reports.build", queue="q", priority=1, max_attempts=9, timeout=2.0
    )
    assert first_settings("reports.build") == TaskChange(name="reports.build")


def test_a_first_version_needs_a_valid_task_name() -> None:
    with pytest.raises(InvalidInput, match="task"):
        first_settings("bad name")


def test_a_version_gives_its_settings_back_and_the_job_defaults_they_fill_in() -> None:
    version = TaskVersion(
        tenant_id="acme",
        name="reports.build",
        version=4,
        queue="reports",
        priority=2,
        max_attempts=3,
        timeout=30.0,
        immediate=False,
        description="",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        created_by="user:alice@acme.test",
    )
    assert version.settings() == BASE
    assert version.job_defaults() == {
        "queue": "reports",
        "priority": 2,
        "max_attempts": 3,
        "timeout": 30.0,
        "immediate": False,
    }


def test_the_task_queries_load_alike_for_both_dialects() -> None:
    sqlite = load_portable("tasks.sql", "sqlite")
    postgres = load_portable("tasks.sql", "postgres")
    assert sqlite.keys() == postgres.keys()
    for name, sql in sqlite.items():
        assert sql and "--" not in sql, name
        params = set(re.findall(r"(?<![:\w]):(\w+)", sql))
        assert set(re.findall(r"%\((\w+)\)s", postgres[name])) == params, name
        assert "::" not in sql, f"{name}: no casts in portable SQL"
