"""``conveyor mail``: rules made, listed and removed on the database directly, the
outbox listed, and a test mail sent through a real SMTP server (or refused with one
line when mail is not set up)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor.cli.context import console
from conveyor.cli.main import app
from tests.integration.cli_support import run, run_json
from tests.smtp_server import Mailbox, free_port, smtp_server

runner = CliRunner()


def cli(db: str, *args: str) -> tuple[int, str]:
    return run(db, "mail", *args)


def ok_json(db: str, *args: str) -> Any:
    return run_json(db, "mail", *args)


def test_a_rule_is_made_listed_and_removed(db: str) -> None:
    made = ok_json(
        db,
        "rules",
        "add",
        "task:cnpj.lookup",
        "--on",
        "started",
        "--on",
        "failed",
        "--to",
        "owner",
        "--to",
        "ops@acme.test",
    )
    assert made["on"] == ["started", "failed"] and made["to"] == ["owner", "ops@acme.test"]
    assert [r["id"] for r in ok_json(db, "rules", "ls")] == [made["id"]]
    assert cli(db, "rules", "rm", str(made["id"]))[0] == 0
    assert ok_json(db, "rules", "ls") == []
    code, out = cli(db, "rules", "rm", str(made["id"]))
    assert code == 2 and "does not exist" in out
    assert ok_json(db, "outbox") == []


def test_a_bad_rule_is_one_line_and_exit_code_2(db: str) -> None:
    code, out = cli(db, "rules", "add", "task:x", "--on", "cancelled", "--to", "owner")
    assert code == 2 and "on" in out and "Traceback" not in out


def test_the_test_mail_goes_through_the_configured_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with smtp_server() as (mailbox, port):
        monkeypatch.setenv("CONVEYOR_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CONVEYOR_SMTP_PORT", str(port))
        monkeypatch.setenv("CONVEYOR_SMTP_TLS", "none")
        monkeypatch.setenv("CONVEYOR_MAIL_FROM", "jobs@acme.test")
        result = runner.invoke(app, ["mail", "test", "--to", "ops@acme.test"])
        assert result.exit_code == 0, result.output
        [message] = mailbox.messages
        assert message["From"] == "jobs@acme.test" and "test mail" in Mailbox.text(message)


def test_the_test_mail_without_smtp_or_with_the_server_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONVEYOR_SMTP_HOST", raising=False)
    result = runner.invoke(app, ["mail", "test", "--to", "ops@acme.test"])
    assert result.exit_code == 2 and "smtp_host" in result.output
    monkeypatch.setenv("CONVEYOR_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CONVEYOR_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("CONVEYOR_SMTP_TLS", "none")
    monkeypatch.setenv("CONVEYOR_SMTP_USERNAME", "conveyor")
    monkeypatch.setenv("CONVEYOR_SMTP_PASSWORD", "s3cret-pass")
    result = runner.invoke(app, ["mail", "test", "--to", "ops@acme.test"])
    assert result.exit_code == 1 and "not sent" in result.output
    assert "s3cret-pass" not in result.output


def test_the_outbox_shows_subjects_and_errors_as_text_not_markup(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "width", 200)
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "INSERT INTO mail_outbox (tenant_id, dedupe_key, kind, recipient, subject,"
            " text_body, html_body, state, window_start, last_error, created_at, updated_at)"
            " VALUES ('default', 'k', 'job.started', 'a@x.test', 'Job [/] [bold]x[/bold]',"
            " '', '', 'failed', 0, '[red]550[/red] no', 0, 0)"
        )
    code, out = cli(db, "outbox")
    assert code == 0, out
    assert "[bold]x[/bold]" in out and "[red]550[/red]" in out
