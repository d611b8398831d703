"""Two ``conveyor serve`` nodes on one PostgreSQL database: one leads the scheduler;
kill it and the other takes over. A schedule firing every second for 15 s makes one
job per fire time, with no fire time missing, and the pause in job creation is the
takeover time (printed)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.jobs import DEFAULT_TENANT, JobFilter, utcnow
from conveyor.domain.schedules import schedule_spec
from conveyor.domain.timing import every
from conveyor.services.schedules import ScheduleService
from conveyor.store import schedules_for, store_from_url
from tests.integration.test_serve import _free_port, _wait_ready

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
RUN_SECONDS = 15
KILL_AFTER = 4


def _leader_pid(url: str) -> int | None:
    query = (
        "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a USING (pid) "
        "WHERE l.locktype = 'advisory' AND a.datname = current_database() "
        "AND a.application_name LIKE 'conveyor-scheduler:%'"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return int(str(row[0]).rsplit(":", 1)[1]) if row else None


def _start_node(url: str, tmp_path: Path, name: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": url,
        "CONVEYOR_ARGON2_MEMORY_KIB": "1024",
        "CONVEYOR_ARGON2_TIME_COST": "1",
        "CONVEYOR_ADMIN_PASSWORD": "not-a-real-secret-1",
    }
    with (tmp_path / f"{name}.log").open("w") as log:
        process = subprocess.Popen(
            [str(BIN / "conveyor"), "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    _wait_ready(base, process)
    return process, base


async def _add_every_second(url: str) -> int:
    store = store_from_url(url)
    await store.open()
    try:
        principal = Principal(DEFAULT_TENANT, frozenset(Scope), email="ops@example.test")
        service = ScheduleService(schedules_for(store), principal, utcnow)
        spec = schedule_spec("heartbeat", every(1), "noop", queue="failover-test")
        return (await service.create(spec)).id
    finally:
        await store.close()


async def _fired(url: str) -> list[tuple[str, float]]:
    store = store_from_url(url)
    await store.open()
    try:
        jobs = await store.list_jobs(
            DEFAULT_TENANT, JobFilter(queue="failover-test", newest_first=False, limit=10_000)
        )
    finally:
        await store.close()
    return [(job.message_id or "", job.created_at.timestamp()) for job in jobs]


def test_a_second_node_takes_over_firing_without_duplicates_or_holes(
    pg_empty_url: str, tmp_path: Path
) -> None:
    url = pg_empty_url
    subprocess.run(
        [str(BIN / "conveyor"), "--database-url", url, "db", "upgrade"], check=True, cwd=tmp_path
    )
    first, _ = _start_node(url, tmp_path, "first")
    second, _ = _start_node(url, tmp_path, "second")
    nodes = {first.pid: first, second.pid: second}
    try:
        asyncio.run(_add_every_second(url))
        time.sleep(KILL_AFTER)
        leader = _leader_pid(url)
        assert leader in nodes, f"no node leads (leader pid {leader})"
        nodes[leader].send_signal(signal.SIGKILL)
        nodes[leader].wait(10)
        time.sleep(RUN_SECONDS - KILL_AFTER)
        survivor = next(pid for pid in nodes if pid != leader)
        assert _leader_pid(url) == survivor
    finally:
        for process in nodes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    fired = asyncio.run(_fired(url))
    keys = [key for key, _ in fired]
    assert len(keys) == len(set(keys)), "a fire time made two jobs"
    seconds = sorted(int(_fire_second(key)) for key in keys)
    assert len(seconds) >= RUN_SECONDS - 2
    assert seconds == list(range(seconds[0], seconds[-1] + 1)), "a fire time was skipped"
    created = sorted(at for _, at in fired)
    takeover = max(b - a for a, b in itertools.pairwise(created))
    print(f"\nfailover: {len(keys)} firings, longest pause in job creation {takeover:.2f} s")
    assert takeover < timedelta(seconds=10).total_seconds()


def _fire_second(message_id: str) -> float:
    return datetime.fromisoformat(message_id.split(":", 2)[2]).timestamp()
