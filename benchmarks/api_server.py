"""A real ``conveyor serve`` for the API benchmark, on a fresh database, with an API key.

The schema is created with ``conveyor db upgrade``; the server runs as a subprocess
with the admin password set (so we can sign in), no rate limit and warnings-only
logs. It is always stopped, and a PostgreSQL database always dropped, on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.databases import fresh_database
from benchmarks.workers import BIN, WorkerProcess

ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = f"bench-{secrets.token_urlsafe(16)}"
KEY_SCOPES = ["jobs:read", "jobs:write"]
READY_TIMEOUT_SECONDS = 60.0
STORES = ("sqlite", "postgres")


class ServerStartError(RuntimeError):
    """The server did not answer `/readyz` in time (its output is printed)."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server that answers, and the API key to load it with."""

    store: str
    database_url: str
    base_url: str
    pid: int
    api_key: str

    @property
    def postgres_database(self) -> str | None:
        """The PostgreSQL database's name (``None`` on SQLite)."""
        if self.store != "postgres":
            return None
        return self.database_url.rpartition("/")[2].partition("?")[0]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env() -> dict[str, str]:
    """The server's settings for the load test (``CONVEYOR_*`` variables)."""
    return {
        "CONVEYOR_ADMIN_EMAIL": ADMIN_EMAIL,
        "CONVEYOR_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CONVEYOR_RATE_LIMIT_PER_MINUTE": "0",
        "CONVEYOR_LOG_LEVEL": "WARNING",
        "CONVEYOR_SQLITE_SYNCHRONOUS": "FULL",
    }


def upgrade(database_url: str) -> None:
    """Create the schema with ``conveyor db upgrade``; its output is shown if it fails."""
    command = [str(BIN / "conveyor"), "--database-url", database_url, "db", "upgrade"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"db upgrade failed ({done.returncode}):\n{done.stdout}{done.stderr}")


async def _wait_ready(process: WorkerProcess, base_url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            process.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise ServerStartError(f"not ready after {READY_TIMEOUT_SECONDS:.0f} s")


async def create_api_key(base_url: str) -> str:
    """Sign in as the admin and create a key that may read and write jobs."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        created = await client.post(
            "/api/v1/api-keys",
            json={"name": "benchmark", "scopes": KEY_SCOPES},
            headers={"Authorization": f"Bearer {token}"},
        )
        created.raise_for_status()
        return str(created.json()["key"])


@contextlib.asynccontextmanager
async def api_server(
    store: str, extra_env: dict[str, str] | None = None
) -> AsyncIterator[RunningServer]:
    """A fresh database of ``store`` ("sqlite" or "postgres") and a server on it, with
    ``extra_env`` added to its settings."""
    logs = Path(tempfile.mkdtemp(prefix=f"bench-api-{store}-"))
    try:
        async with fresh_database(f"api-{store}", store == "postgres") as url:
            upgrade(url)
            port = free_port()
            command = [str(BIN / "conveyor"), "--database-url", url, "serve", "--port", str(port)]
            env = server_env() | (extra_env or {})
            process = WorkerProcess(command, env, logs / "server.log")
            base_url = f"http://127.0.0.1:{port}"
            process.start()
            try:
                await _wait_ready(process, base_url)
                key = await create_api_key(base_url)
                yield RunningServer(store, url, base_url, process.pid, key)
            except Exception:
                print(f"server output ({store}):\n{process.log_tail(60)}", file=sys.stderr)
                raise
            finally:
                process.stop()
    finally:
        shutil.rmtree(logs, ignore_errors=True)
