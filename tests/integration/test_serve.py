"""``conveyor serve`` as a newcomer meets it: a real process, the printed login, the docs,
a job created and run by the embedded demo worker."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conveyor.domain.jobs import utcnow
from conveyor.settings import Settings
from conveyor.store import accounts_for, store_from_url
from conveyor.store.sealing import SecretBox

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited early: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("serve did not become ready in 30 s")


def _login_from(output: Path) -> tuple[str, str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.search(r"sign in as (\S+) with password (\S+)", output.read_text())
        if found:
            return found[1], found[2]
        time.sleep(0.1)
    pytest.fail(f"no login printed: {output.read_text()}")


def test_serve_prints_a_login_that_works_and_runs_jobs(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    output = tmp_path / "serve.out"
    env = {**os.environ, "CONVEYOR_ARGON2_MEMORY_KIB": "1024", "CONVEYOR_ARGON2_TIME_COST": "1"}
    with output.open("w") as sink:
        process = subprocess.Popen(
            [
                str(BIN / "conveyor"),
                "--database-url",
                f"sqlite:///{tmp_path / 'c.db'}",
                "serve",
                "--demo",
                "--migrate",
                "--port",
                str(port),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        try:
            _wait_ready(url, process)
            email, password = _login_from(output)
            assert (httpx.get(f"{url}/api/docs")).status_code == 200
            form = {"username": email, "password": password}
            token = httpx.post(f"{url}/api/v1/auth/token", data=form).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            job = httpx.post(
                f"{url}/api/v1/jobs",
                json={"task": "demo.report", "payload": {"rows": 2}},
                headers=auth,
            ).json()
            deadline = time.monotonic() + 20
            state = job["state"]
            while state != "completed" and time.monotonic() < deadline:
                time.sleep(0.2)
                state = httpx.get(f"{url}/api/v1/jobs/{job['id']}", headers=auth).json()["job"][
                    "state"
                ]
            assert state == "completed"
            metrics = httpx.get(f"{url}/metrics").text
            ran = 'conveyor_job_run_duration_seconds_count{outcome="completed",task="demo.report"}'
            assert ran in metrics
            assert 'conveyor_jobs{queue="default",state="completed",tenant="default"}' in metrics
            assert "conveyor_claim_duration_seconds_bucket" in metrics
            assert 'route="/api/v1/jobs/{job_id}"' in metrics
            assert password not in output.read_text().split("shown once")[1]
        finally:
            process.terminate()
            process.wait(timeout=30)
    # uvicorn drains, then re-raises SIGTERM so the exit status says how it ended
    assert process.returncode == -15
    log = output.read_text()
    assert "Application shutdown complete" in log
    assert re.search(r"worker \S+ stopped after \d+ jobs", log)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--database-url", "sqlite:///missing.db", "serve"], {}, "conveyor db upgrade"),
        (["serve"], {"CONVEYOR_PORT": "99999"}, "setting port"),
        (["serve", "--config", "nope.toml"], {}, "config: no such file"),
    ],
)
def test_serve_refuses_bad_setups_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [str(BIN / "conveyor"), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **env},
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_a_key_that_did_not_seal_the_database_with_one_line(
    tmp_path: Path,
) -> None:
    def conveyor(key: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "conveyor"), "--database-url", "sqlite:///c.db", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "CONVEYOR_SECRET_KEY": key},
            timeout=30,
        )

    assert conveyor("the first key, long enough", "db", "upgrade").returncode == 0
    assert conveyor("the first key, long enough", "webhooks", "ls").returncode == 0
    refused = conveyor("another key, also long enough", "serve", "--port", str(_free_port()))
    assert refused.returncode == 2
    assert "sealed with another key" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_serve_refuses_signing_keys_that_no_longer_open_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["CONVEYOR_DATA_DIR"] = str(tmp_path / "data")
    url = f"sqlite:///{tmp_path / 'c.db'}"

    def conveyor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "conveyor"), "--database-url", url, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=30,
        )

    assert conveyor("db", "upgrade").returncode == 0

    async def plant_a_key_sealed_elsewhere() -> None:
        store = store_from_url(url)
        await store.open()
        try:
            box = Settings(data_dir=tmp_path / "data").secret_box()
            await accounts_for(store, box).check_key(utcnow())
            lost = accounts_for(store, SecretBox("a key nobody holds any more"))
            await lost.add_signing_key("old", "its secret", utcnow())
        finally:
            await store.close()

    asyncio.run(plant_a_key_sealed_elsewhere())
    refused = conveyor("serve", "--port", str(_free_port()))
    assert refused.returncode == 2
    assert "none of the 1 token signing keys" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
