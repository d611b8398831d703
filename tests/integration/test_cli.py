"""The conveyor command: clear output, one-line errors with exit code 2, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.main import app
from conveyor.store.queries import migration_files

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(app, ["--database-url", url, "db", "upgrade"])
    assert result.exit_code == 0, result.output
    latest = migration_files("sqlite")[-1][0]
    assert f"applied migrations {list(range(1, latest + 1))}" in result.output
    return url


def cli(db: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--database-url", db, *args])
    return result.exit_code, result.output


def test_enqueue_then_list_show_and_stats(db: str) -> None:
    code, out = cli(
        db,
        "enqueue",
        "mail.send",
        "--payload",
        '{"to": "a@b.c"}',
        "--priority",
        "2",
        "--tag",
        "x",
        "--message-id",
        "m-1",
        "--json",
    )
    assert code == 0, out
    job = json.loads(out)
    assert job["task"] == "mail.send"
    assert job["priority"] == 2
    assert job["tags"] == ["x"]
    code, again = cli(db, "enqueue", "mail.send", "--message-id", "m-1", "--json")
    assert json.loads(again)["id"] == job["id"]
    code, out = cli(db, "jobs", "ls", "--json")
    assert [j["id"] for j in json.loads(out)] == [job["id"]]
    code, out = cli(db, "jobs", "show", str(job["id"]), "--json")
    detail = json.loads(out)
    assert detail["job"]["payload"] == {"to": "a@b.c"}
    assert [e["type"] for e in detail["events"]] == ["job.enqueued"]
    code, out = cli(db, "jobs", "stats", "--json")
    assert json.loads(out) == {"default": {"available": 1}}


def test_cancel_then_retry_and_illegal_moves_are_refused(db: str) -> None:
    _, out = cli(db, "enqueue", "t", "--json")
    job_id = str(json.loads(out)["id"])
    assert cli(db, "jobs", "cancel", job_id)[0] == 0
    code, out = cli(db, "jobs", "cancel", job_id)
    assert code == 2
    assert "cannot go from 'cancelled' to 'cancelled'" in out
    assert cli(db, "jobs", "retry", job_id)[0] == 0
    code, out = cli(db, "jobs", "retry", job_id)
    assert code == 2
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", "t", "--payload", "{nope"], "payload: is not valid JSON"),
        (["enqueue", "t", "--priority", "10"], "priority: must be a whole number from 0 to 9"),
        (["enqueue", "bad name!"], "task: must be"),
        (["enqueue", "t", "--run-at", "tomorrow"], "run_at: must be an ISO 8601"),
        (["enqueue", "t", "--delay", "5", "--run-at", "2030-01-01T00:00:00+00:00"], "not both"),
        (["jobs", "show", "404"], "job 404 does not exist"),
        (["queues", "pause", "no spaces allowed"], "queue: must be"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    db: str, args: list[str], message: str
) -> None:
    code, out = cli(db, *args)
    assert code == 2
    assert message in out
    assert "Traceback" not in out
    assert json.loads(cli(db, "jobs", "ls", "--json")[1]) == []


def test_commands_refuse_a_database_that_was_never_upgraded(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nothing-here.db'}"
    code, out = cli(missing, "jobs", "ls")
    assert code == 2
    assert "conveyor db upgrade" in out
    assert not (tmp_path / "nothing-here.db").exists()


def test_worker_refuses_an_app_that_is_not_one(db: str) -> None:
    code, out = cli(db, "worker", "conveyor.cli.main:app")
    assert code == 2
    assert "is not a Conveyor app" in out


def test_queues_pause_resume_and_limit_show_in_the_listing(db: str) -> None:
    assert cli(db, "queues", "pause", "mail")[0] == 0
    assert cli(db, "queues", "limit", "mail", "3")[0] == 0
    [queue] = json.loads(cli(db, "queues", "ls", "--json")[1])
    assert queue["paused"] is True
    assert queue["concurrency"] == 3
    assert cli(db, "queues", "resume", "mail")[0] == 0
    assert cli(db, "queues", "limit", "mail")[0] == 0
    [queue] = json.loads(cli(db, "queues", "ls", "--json")[1])
    assert (queue["paused"], queue["concurrency"]) == (False, None)


def test_demo_runs_jobs_to_the_end_and_events_tail_shows_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    code, out = cli(url, "demo", "--jobs", "5", "--concurrency", "4")
    assert code == 0, out
    assert "done: 5 finished jobs" in out
    stats = json.loads(cli(url, "jobs", "stats", "--json")[1])
    assert sum(stats["default"].values()) + sum(stats.get("images", {}).values()) == 5
    assert stats["default"].get("completed", 0) + stats.get("images", {}).get("completed", 0) == 5
    code, out = cli(url, "events", "tail", "--no-follow")
    assert code == 0
    assert "job.succeeded" in out


def test_worker_refuses_an_old_schema_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # an existing database that was never upgraded
    code, out = cli(f"sqlite:///{path}", "worker", "conveyor.demo:app")
    assert code == 2
    assert "schema is at version 0" in out
    assert "conveyor db upgrade" in out


def test_an_unexpected_failure_is_one_line_with_exit_1(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.services.jobs import JobService

    async def broken(self: JobService) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(JobService, "stats", broken)
    monkeypatch.delenv("CONVEYOR_DEBUG", raising=False)
    code, out = cli(db, "jobs", "stats")
    assert code == 1
    assert "unexpected RuntimeError: disk on fire" in out
    assert "Traceback" not in out
