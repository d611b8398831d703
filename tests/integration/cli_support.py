"""Running ``conveyor`` commands in-process against a test database."""

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


def run(db: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``conveyor --database-url DB ARGS...``: the exit code and everything printed."""
    result = runner.invoke(app, ["--database-url", db, *args], env=env)
    return result.exit_code, result.output


def run_json(db: str, *args: str) -> Any:
    """``run(..., "--json")``, which must succeed: what it printed on stdout, parsed."""
    result = runner.invoke(app, ["--database-url", db, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
