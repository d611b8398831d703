"""``conveyor jobs edit``: change a job that has not started; one-line errors, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import cli


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code, out = cli(url, "db", "upgrade")
    assert code == 0, out
    return url


def scheduled_job(db: str) -> dict[str, Any]:
    code, out = cli(db, "enqueue", "mail.send", "--delay", "3600", "--key", "k-1", "--json")
    assert code == 0, out
    job: dict[str, Any] = json.loads(out)
    assert job["state"] == "scheduled"
    return job


def show(db: str, job_id: int) -> dict[str, Any]:
    code, out = cli(db, "jobs", "show", str(job_id), "--json")
    assert code == 0, out
    detail: dict[str, Any] = json.loads(out)
    return detail


def test_edit_changes_the_options_given_and_records_it(db: str) -> None:
    job = scheduled_job(db)
    code, out = cli(
        db,
        "jobs",
        "edit",
        str(job["id"]),
        "--payload",
        '{"to": "x@y.z"}',
        "--priority",
        "1",
        "--run-at",
        "2030-01-31T09:00:00+00:00",
        "--tag",
        "vip",
        "--clear",
        "key",
        "--json",
    )
    assert code == 0, out
    edited = json.loads(out)
    assert (edited["payload"], edited["priority"], edited["tags"]) == ({"to": "x@y.z"}, 1, ["vip"])
    assert (edited["key"], edited["state"]) == (None, "scheduled")
    assert edited["run_at"].startswith("2030-01-31T09:00:00")
    detail = show(db, job["id"])
    assert detail["job"] == edited
    assert [e["type"] for e in detail["events"]] == ["job.enqueued", "job.edited"]


def test_a_run_at_in_the_past_makes_the_job_available(db: str) -> None:
    job = scheduled_job(db)
    code, out = cli(db, "jobs", "edit", str(job["id"]), "--delay", "0")
    assert code == 0, out
    assert "is available" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to change"),
        (["--payload", "{nope"], "payload: is not valid JSON"),
        (["--priority", "10"], "priority: must be a whole number from 0 to 9"),
        (["--run-at", "tomorrow"], "run_at: must be an ISO 8601"),
        (["--run-at", "2030-01-01T00:00:00"], "run_at: must be a date-time with a time zone"),
        (["--delay", "5", "--run-at", "2030-01-01T00:00:00+00:00"], "not both"),
        (["--queue", "no spaces"], "queue: must be"),
        (["--clear", "task"], "task: cannot be edited"),
        (["--clear", "priority"], "priority: must be a whole number"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    db: str, args: list[str], message: str
) -> None:
    job = scheduled_job(db)
    code, out = cli(db, "jobs", "edit", str(job["id"]), *args)
    assert code == 2
    assert message in out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
    assert show(db, job["id"])["job"] == job


def test_a_job_that_has_finished_or_does_not_exist_is_refused(db: str) -> None:
    job = scheduled_job(db)
    assert cli(db, "jobs", "cancel", str(job["id"]))[0] == 0
    code, out = cli(db, "jobs", "edit", str(job["id"]), "--priority", "1")
    assert code == 2
    assert f"job {job['id']} is cancelled: only scheduled or available jobs" in out
    code, out = cli(db, "jobs", "edit", "404", "--priority", "1")
    assert (code, "job 404 does not exist" in out) == (2, True)
