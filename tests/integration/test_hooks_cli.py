"""``conveyor hooks``: incoming hooks made, listed, shown, given a new URL and deleted
from the command line on the database directly, and their receipts listed; the URL
and secret are printed only when made."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.cli.context import checked_box
from conveyor.services.hooks import HookReceiver, IncomingRequest
from conveyor.services.jobs import JobService
from conveyor.store import hooks_for, store_from_url
from tests.integration.cli_support import run, run_json


def cli(db: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    return run(db, "hooks", *args, env=env)


def ok_json(db: str, *args: str) -> Any:
    return run_json(db, "hooks", *args)


def _send(db: str, token: str, body: bytes, delivery_id: str) -> None:
    """Receive one request as ``conveyor serve`` would."""

    async def send() -> None:
        store = store_from_url(db)
        await store.open()
        try:
            hooks = hooks_for(store, await checked_box(store))  # the key the CLI sealed with
            receiver = HookReceiver(hooks, lambda t: JobService(store, t), store.clock)
            request = IncomingRequest("POST", [("webhook-id", delivery_id)], body, "192.0.2.1")
            await receiver.receive(token, request)
        finally:
            await store.close()

    asyncio.run(send())


def test_a_hook_is_made_listed_shown_rotated_and_removed(db: str) -> None:
    made = ok_json(
        db, "add", "backups", "--verify", "standard-webhooks", "--server-url", "https://c.example"
    )
    assert made["url"] == f"https://c.example/hooks/{made['token']}"
    assert made["secret"].startswith("whsec_") and made["verify"] == "standard-webhooks"
    listed = ok_json(db, "ls")
    assert [h["name"] for h in listed] == ["backups"]
    assert "secret" not in listed[0] and "token" not in listed[0]
    code, out = cli(db, "ls")
    assert code == 0 and made["token"] not in out and made["secret"] not in out
    shown = ok_json(db, "show", str(made["id"]))
    assert shown["delivery_header"] == "webhook-id" and "secret" not in shown
    rotated = ok_json(db, "rotate-token", str(made["id"]))
    assert rotated["token"] != made["token"] and rotated["secret"] is None
    assert cli(db, "rm", str(made["id"]))[0] == 0
    assert ok_json(db, "ls") == []


def test_receipts_are_listed_newest_first(db: str) -> None:
    made = ok_json(db, "add", "backups")
    _send(db, made["token"], b"first", "d-1")
    _send(db, made["token"], b"second", "d-2")
    _send(db, made["token"], b"again", "d-1")
    found = ok_json(db, "receipts", str(made["id"]))
    assert {r["delivery_id"] for r in found} == {"d-1", "d-2"}
    assert all(r["ip"] == "192.0.2.1" and "body" not in r for r in found)
    assert [
        r["size"] for r in ok_json(db, "receipts", str(made["id"]), "--delivery-id", "d-1")
    ] == [5]
    code, out = cli(db, "receipts", str(made["id"]))
    assert code == 0 and "d-2" in out
    assert datetime.fromisoformat(found[0]["received_at"]) <= datetime.now(UTC)


def test_bad_input_is_one_line_and_exit_code_2(db: str) -> None:
    code, out = cli(db, "add", "x", "--verify", "md5")
    assert code == 2 and "--verify" in out
    code, out = cli(db, "add", "x", "--task", "shell")
    assert code == 2 and "task" in out
    code, out = cli(db, "rm", "99")
    assert code == 2 and "does not exist" in out
    assert cli(db, "add", "dup")[0] == 0
    code, out = cli(db, "add", "dup")
    assert code == 2 and "exists already" in out
    code, out = cli(db, "receipts", "99")
    assert code == 2 and "does not exist" in out


def test_a_secret_can_come_from_a_file_not_the_shell_history(db: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("a-secret-from-github\n")
    made = ok_json(
        db, "add", "github", "--verify", "hmac-sha256", "--secret-file", str(secret_file)
    )
    assert made["secret"] == "a-secret-from-github"
    code, out = cli(db, "add", "x", "--secret", "s" * 10, "--secret-file", str(secret_file))
    assert code == 2 and "not both" in out
    code, out = cli(db, "add", "y", "--secret-file", str(tmp_path / "missing"))
    assert code == 2 and "missing" in out


def test_the_printed_url_says_when_it_is_only_the_default_address(db: str) -> None:
    code, out = cli(db, "add", "backups", env={"CONVEYOR_PUBLIC_URL": ""})
    assert code == 0 and "http://127.0.0.1:8000/hooks/" in out
    assert "default address" in out and "CONVEYOR_PUBLIC_URL" in out
    code, out = cli(db, "add", "public", env={"CONVEYOR_PUBLIC_URL": "https://c.example"})
    assert code == 0 and "https://c.example/hooks/" in out and "default address" not in out
