"""``conveyor schedules``: schedules made, read, paused, changed and deleted from the
command line on the database directly; times in each schedule's zone; bad input is one
line with exit code 2 and changes nothing."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.cli import schedules as schedules_cli
from conveyor.cli.main import app
from conveyor.domain.schedules import Firing, RunOutcome
from conveyor.services.jobs import JobService
from conveyor.store import schedules_for, store_from_url

runner = CliRunner()

HTTP_PAYLOAD = '{"url": "http://127.0.0.1:9/x"}'


def cli(db: str, *args: str, given: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--database-url", db, *args], input=given)
    return result.exit_code, result.output


def ok_json(db: str, *args: str) -> Any:
    code, out = cli(db, *args, "--json")
    assert code == 0, out
    return json.loads(out)


def add(db: str, *args: str) -> dict[str, Any]:
    """Add a schedule running the ``http`` task; return it as JSON."""
    found: dict[str, Any] = ok_json(
        db, "schedules", "add", *args, "--task", "http", "--payload", HTTP_PAYLOAD
    )
    return found


def test_add_says_when_in_words_and_lists_the_next_five_runs_in_its_zone(db: str) -> None:
    code, out = cli(
        db, "schedules", "add", "0 19 * * *", "--tz", "America/Sao_Paulo", "--task", "http"
    )
    assert code == 0, out
    assert "At 19:00 every day (America/Sao_Paulo)" in out
    assert "next 5 runs in America/Sao_Paulo:" in out
    assert out.count("19:00:00 -03  (") == 5
    assert out.count("22:00:00 UTC)") == 5
    [schedule] = ok_json(db, "schedules", "ls")
    assert schedule["spec"]["name"].startswith("http-")
    assert schedule["owner"] == f"user:cli:{getpass.getuser()}"


def test_a_schedule_is_listed_paused_resumed_edited_and_deleted(migrated_url: str) -> None:
    db = migrated_url
    made = add(db, "*/5 * * * *", "--name", "poll", "--description", "[b]not markup[/b]")
    assert (made["when"], made["state"]) == ("Every fifth minute of every hour (UTC)", "enabled")
    assert len(made["upcoming"]) == 5
    [listed] = ok_json(db, "schedules", "ls")
    assert listed["spec"]["job"]["payload"] == {"url": "http://127.0.0.1:9/x"}
    assert cli(db, "schedules", "pause", "poll")[0] == 0
    shown = ok_json(db, "schedules", "show", str(made["id"]))
    assert (shown["state"], shown["upcoming"], shown["runs"]) == ("paused", [], [])
    code, out = cli(db, "schedules", "resume", "poll")
    assert (code, "next run in UTC:" in out) == (0, True)
    edited = ok_json(
        db, "schedules", "edit", "poll", "--cron", "0 9 * * 1", "--tz", "Europe/Berlin"
    )
    assert edited["when"] == "At 09:00 on Monday (Europe/Berlin)"
    assert edited["spec"]["job"]["payload"] == {"url": "http://127.0.0.1:9/x"}
    assert [t[10:] for t in edited["upcoming"]] == ["T09:00:00+01:00"] * 5
    code, out = cli(db, "schedules", "rm", "poll", "--yes")
    assert (code, "schedule" in out and "deleted" in out) == (0, True)
    assert ok_json(db, "schedules", "ls") == []


def test_the_table_and_details_show_times_in_the_schedules_zone(db: str) -> None:
    add(db, "30 8 * * *", "--tz", "Asia/Tokyo", "--name", "tokyo", "--description", "[x] y")
    code, out = cli(db, "schedules", "ls")
    assert code == 0, out
    assert "tokyo" in out  # the table is 80 columns wide here: short words stay whole
    assert "08:30:00" in out and "JST" in out
    code, out = cli(db, "schedules", "show", "tokyo", "--count", "2")
    assert code == 0, out
    assert "next 2 runs in Asia/Tokyo:" in out
    assert "description: [x] y" in out
    assert "no runs yet" in out


def test_every_counts_from_the_start_date_read_in_the_zone(db: str) -> None:
    made = add(db, "--every", "15m", "--start-at", "2035-01-02T10:07", "--tz", "Asia/Tokyo")
    assert made["when"] == "Every 15 minutes"
    assert made["upcoming"][:2] == ["2035-01-02T10:07:00+09:00", "2035-01-02T10:22:00+09:00"]


def test_at_fires_once_and_then_nothing_is_left(db: str) -> None:
    made = add(db, "--at", "2035-12-01T09:00", "--tz", "Europe/Berlin")
    assert made["when"] == "Once, at 2035-12-01 09:00:00 (Europe/Berlin)"
    assert made["upcoming"] == ["2035-12-01T09:00:00+01:00"]


def test_edit_changes_only_what_is_given_and_can_remove_a_date(db: str) -> None:
    add(db, "0 6 * * *", "--name", "early", "--end-at", "2035-01-01T00:00:00+00:00")
    edited = ok_json(
        db,
        "schedules",
        "edit",
        "early",
        "--payload",
        '{"url": "http://127.0.0.1:9/y"}',
        "--priority",
        "3",
        "--overlap",
        "skip",
        "--end-at",
        "none",
        "--name",
        "dawn",
    )
    spec = edited["spec"]
    assert (spec["name"], spec["job"]["priority"], spec["overlap"]) == ("dawn", 3, "skip")
    assert (spec["end_at"], spec["timing"]["cron"]) == (None, "0 6 * * *")
    assert edited["revision"] == 2


def record_runs(db: str, name: str) -> int:
    """Fire the schedule ``name`` twice by hand: once with a job, once skipped."""

    async def fire() -> int:
        store = store_from_url(db)
        await store.open()
        try:
            schedules = schedules_for(store)
            schedule = await schedules.find("default", name)
            assert schedule is not None
            job = await JobService(store, "default").enqueue("http", {}, {})
            first = datetime(2035, 1, 1, 9, tzinfo=UTC)
            runs = [
                (Firing(first, RunOutcome.ENQUEUED), job.id),
                (Firing(first + timedelta(hours=1), RunOutcome.SKIPPED, "still running"), None),
            ]
            await schedules.record_firing(schedule, runs, schedule.next_fire_at, [], store.clock())
            return job.id
        finally:
            await store.close()

    return asyncio.run(fire())


def test_runs_show_each_fire_time_with_its_job_and_that_jobs_state(db: str) -> None:
    add(db, "0 * * * *", "--name", "hourly", "--tz", "Europe/Berlin")
    code, out = cli(db, "schedules", "runs", "hourly")
    assert (code, "has not fired yet" in out) == (0, True)
    job_id = record_runs(db, "hourly")
    skipped, fired = ok_json(db, "schedules", "runs", "hourly")
    assert (fired["outcome"], fired["job_id"], fired["job_state"]) == (
        "enqueued",
        job_id,
        "available",
    )
    assert (skipped["outcome"], skipped["job_id"], skipped["reason"]) == (
        "skipped",
        None,
        "still running",
    )
    code, out = cli(db, "schedules", "runs", "hourly")
    assert code == 0, out
    assert "2035-01-01 10:00:00 CET" in out
    assert "enqueued" in out and "available" in out
    shown = ok_json(db, "schedules", "show", "hourly", "--runs", "1")
    assert [run["outcome"] for run in shown["runs"]] == ["skipped"]


def test_rm_asks_at_a_terminal_unless_yes(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add(db, "0 6 * * *", "--name", "keep")
    add(db, "0 7 * * *", "--name", "drop")
    monkeypatch.setattr(schedules_cli, "stdin_is_terminal", lambda: True)
    code, out = cli(db, "schedules", "rm", "keep", given="n\n")
    assert (code, "nothing deleted" in out) == (1, True)
    assert cli(db, "schedules", "rm", "drop", given="y\n")[0] == 0
    assert [s["spec"]["name"] for s in ok_json(db, "schedules", "ls")] == ["keep"]
    monkeypatch.setattr(schedules_cli, "stdin_is_terminal", lambda: False)
    assert cli(db, "schedules", "rm", "keep")[0] == 0
    assert ok_json(db, "schedules", "ls") == []


def test_preview_needs_no_database_and_follows_daylight_saving(tmp_path: Path) -> None:
    nowhere = f"sqlite:///{tmp_path / 'never-made.db'}"
    args = ["schedules", "preview", "30 2 * * *", "--tz", "America/New_York"]
    code, out = cli(nowhere, *args, "--start-at", "2035-03-10", "--count", "3")
    assert code == 0, out
    assert "At 02:30 every day (America/New_York)" in out
    assert "Sun 2035-03-11 03:00:00 EDT" in out  # 02:30 does not exist that day
    found = json.loads(cli(nowhere, *args, "--count", "10", "--json")[1])
    assert len(found["upcoming"]) == 10
    assert found["timezone"] == "America/New_York"
    assert not (tmp_path / "never-made.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "61 * * * *", "--task", "http"], "error: cron: minute field: 61 is out of range"),
        (["add", "--task", "http"], "when: give exactly one of a cron expression, --every"),
        (["add", "* * * * *", "--every", "5m", "--task", "http"], "exactly one of"),
        (["add", "--every", "soon", "--task", "http"], "interval: 'soon' is not a duration"),
        (["add", "--at", "2001-01-01T00:00:00Z", "--task", "http"], "at: is in the past"),
        (["add", "--at", "tomorrow", "--task", "http"], "at: 'tomorrow' is not an ISO 8601"),
        (["add", "@daily", "--task", "http", "--tz", "sao_paulo"], "did you mean America/Sao"),
        (["add", "@daily", "--task", "http", "--payload", "{no"], "payload: is not valid JSON"),
        (["add", "@daily", "--task", "http", "--misfire", "later"], "misfire: must be one of"),
        (["add", "@daily", "--task", "bad name"], "task: must be"),
        (["add", "@daily", "--task", "http", "--name", "nightly"], "'nightly' already exists"),
        (["add", "@daily", "--task", "http", "--jitter", "9999"], "jitter: must be from 0"),
        (["show", "nope"], "schedule 'nope' does not exist"),
        (["pause", "404"], "schedule '404' does not exist"),
        (["edit", "nightly"], "nothing to change"),
        (["edit", "nightly", "--cron", "0 25 * * *"], "hour field: 25 is out of range 0-23"),
        (["edit", "nightly", "--tz", "Nowhere/Zone"], "'Nowhere/Zone' is not a known"),
        (["edit", "nightly", "--end-at", "2001-01-01T00:00:00Z"], "end_at: must be after"),
        (["runs", "nightly", "--limit", "0"], "limit: must be a whole number from 1"),
        (["preview", "0 19 * * *", "--count", "0"], "count: must be a whole number from 1"),
        (["preview", "0 19 * * * * *"], "has 7 fields"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    db: str, args: list[str], message: str
) -> None:
    add(db, "0 19 * * *", "--name", "nightly", "--start-at", "2030-01-01T00:00:00Z")
    before = ok_json(db, "schedules", "ls")
    code, out = cli(db, "schedules", *args)
    assert code == 2, out
    assert message in out
    assert len(out.strip().splitlines()) == 1
    assert ok_json(db, "schedules", "ls") == before


def test_another_tenant_sees_none_and_an_unknown_tenant_is_refused(db: str) -> None:
    add(db, "@daily", "--name", "mine")
    code, out = cli(db, "--tenant", "nobody", "schedules", "add", "@daily", "--task", "http")
    assert (code, "tenant 'nobody' does not exist" in out) == (2, True)
    assert cli(db, "--tenant", "nobody", "schedules", "ls", "--json") == (0, "[]\n")
