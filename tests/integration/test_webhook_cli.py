"""``conveyor webhooks``: Subscriptions made, listed, rotated, paused and deleted from
the command line on the database directly; a secret is printed only when made."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from standardwebhooks import Webhook

from tests.integration.cli_support import run, run_json


def cli(db: str, *args: str) -> tuple[int, str]:
    return run(db, "webhooks", *args)


def ok_json(db: str, *args: str) -> Any:
    return run_json(db, "webhooks", *args)


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


class _Receiver(BaseHTTPRequestHandler):
    """Answers 204 and keeps what it got (one receiver per test)."""

    got: ClassVar[list[tuple[bytes, dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.got.append((body, dict(self.headers.items())))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_test_request_is_sent_signed_and_reported(db: str) -> None:
    _Receiver.got = []
    with ThreadingHTTPServer(("127.0.0.1", 0), _Receiver) as receiver:
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            made = ok_json(db, "add", url)
            refused = cli(db, "test", str(made["id"]))
            code, out = cli(db, "test", str(made["id"]), "--allow", "127.0.0.1")
        finally:
            receiver.shutdown()
    assert refused[0] == 1 and "not delivered" in refused[1]
    assert code == 0 and "delivered: 204" in out
    [(body, headers)] = _Receiver.got
    assert Webhook(made["secret"]).verify(body, headers)["type"] == "webhook.test"
    assert cli(db, "test", "99")[0] == 2


def test_the_commands_need_the_servers_key_and_never_make_one(db: str, tmp_path: Path) -> None:
    made = ok_json(db, "add", "http://127.0.0.1:9/hook")
    empty = tmp_path / "elsewhere"
    code, out = run(db, "webhooks", "ls", env={"CONVEYOR_DATA_DIR": str(empty)})
    assert code == 2
    assert "no secret key" in out and len(out.strip().splitlines()) == 1
    assert not empty.exists()
    wrong = {"CONVEYOR_SECRET_KEY": "not the server's key at all"}
    code, out = run(db, "webhooks", "rotate", str(made["id"]), env=wrong)
    assert code == 2
    assert "sealed with another key" in out and len(out.strip().splitlines()) == 1
    assert [w["id"] for w in ok_json(db, "ls")] == [made["id"]]
