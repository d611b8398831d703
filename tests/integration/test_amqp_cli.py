"""``conveyor amqp``: routes made, listed and removed from the command line on the
database directly, and the bridge's status."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.cli_support import run, run_json


def cli(db: str, *args: str) -> tuple[int, str]:
    return run(db, "amqp", *args)


def ok_json(db: str, *args: str) -> Any:
    return run_json(db, "amqp", *args)


def test_a_route_is_added_listed_shown_in_status_and_removed(db: str) -> None:
    made = ok_json(db, "routes", "add", "crm.changes", "crm.contact.update", "--priority", "1")
    assert (made["queue"], made["task"], made["priority"]) == (
        "crm.changes",
        "crm.contact.update",
        1,
    )
    assert made["counts"]["received"] == 0
    assert [r["id"] for r in ok_json(db, "routes", "ls")] == [made["id"]]
    code, out = cli(db, "routes", "ls")
    assert code == 0 and "crm.changes" in out
    status = ok_json(db, "status")
    assert status["egress_cursor"] is None
    assert [r["queue"] for r in status["routes"]] == ["crm.changes"]
    code, out = cli(db, "status")
    assert code == 0 and "egress has not run yet" in out
    assert cli(db, "routes", "rm", str(made["id"]))[0] == 0
    assert ok_json(db, "routes", "ls") == []


def test_bad_input_is_one_line_and_exit_code_2(db: str) -> None:
    code, out = cli(db, "routes", "add", "amq.reserved", "crm.contact.update")
    assert code == 2 and "amq." in out
    ok_json(db, "routes", "add", "crm.changes", "crm.contact.update")
    code, out = cli(db, "routes", "add", "crm.changes", "other.task")
    assert code == 2 and "routed already" in out
    code, out = cli(db, "routes", "rm", "99")
    assert code == 2 and "route 99 does not exist" in out


def test_status_says_when_the_bridge_is_off_here(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_AMQP_URL", raising=False)
    assert ok_json(db, "status")["bridge_running"] is False
    code, out = cli(db, "status")
    assert code == 0 and "the bridge is off here" in out
    monkeypatch.setenv("CONVEYOR_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    assert ok_json(db, "status")["bridge_running"] is True


def test_no_route_takes_the_bridges_own_queues_or_shell_jobs(db: str) -> None:
    for queue in ("_conveyor.dead-letter", "conveyor.dead-letter", "conveyor.events"):
        code, out = cli(db, "routes", "add", queue, "crm.contact.update")
        assert code == 2 and "bridge's own" in out, out
    code, out = cli(db, "routes", "add", "crm.changes", "shell")
    assert code == 2 and "shell" in out
