"""The ``conveyor`` command loads only what its commands share: the web stack, the
RabbitMQ client, the PostgreSQL driver and the mail templates wait until a command
needs them, so every command (and ``--help``) starts quickly."""

from __future__ import annotations

import subprocess
import sys

DEFERRED = ("uvicorn", "fastapi", "starlette", "aio_pika", "psycopg", "jinja2", "aiosmtplib")


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    probe = (
        "import sys, conveyor.cli.main; "
        f"print(' '.join(m for m in {DEFERRED!r} if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.split() == []
