"""``conveyor webhooks``: Subscriptions made, listed, rotated, paused and deleted from
the command line on the database directly; a secret is printed only when made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.cli.main import app
from tests.conftest import migrate_database

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A migrated SQLite database."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate_database(url)
    return url


def cli(db: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--database-url", db, "webhooks", *args])
    return result.exit_code, result.output


def ok_json(db: str, *args: str) -> Any:
    code, out = cli(db, *args, "--json")
    assert code == 0, out
    return json.loads(out)


def test_a_webhook_is_made_listed_rotated_and_removed(db: str) -> None:
    made = ok_json(db, "add", "https://example.com/hook", "--event", "job.*", "--queue", "mail")
    assert made["secret"].startswith("whsec_") and made["event_types"] == ["job.*"]
    listed = ok_json(db, "ls")
    assert [w["id"] for w in listed] == [made["id"]] and "secret" not in listed[0]
    code, out = cli(db, "ls")
    assert code == 0 and made["secret"] not in out
    rotated = ok_json(db, "rotate", str(made["id"]))
    assert rotated["secret"] != made["secret"]
    assert cli(db, "disable", str(made["id"]))[0] == 0
    assert ok_json(db, "ls")[0]["enabled"] is False
    assert ok_json(db, "deliveries", str(made["id"])) == []
    assert cli(db, "rm", str(made["id"]))[0] == 0
    assert ok_json(db, "ls") == []


def test_bad_input_is_one_line_and_exit_code_2(db: str) -> None:
    code, out = cli(db, "add", "ftp://example.com/x")
    assert code == 2 and "url" in out
    code, out = cli(db, "rm", "99")
    assert code == 2 and "does not exist" in out
