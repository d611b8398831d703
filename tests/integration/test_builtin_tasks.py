"""The built-in ``http`` and ``shell`` tasks, run by real workers on SQLite and PostgreSQL.

``http`` jobs call a real aiohttp receiver on 127.0.0.1 (allowlisted); ``shell``
jobs run real commands. The API tests use the personas of the API suite: Alice
owns acme, Carl is an agent there, Dave (made here) is a member.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from conveyor.app import Conveyor
from conveyor.builtins.catalog import shell_tasks_from_env
from conveyor.builtins.registration import BuiltinTasks
from conveyor.domain.accounts import ROLE_SCOPES, Principal, Role
from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import Attempt, Job, JobFilter
from conveyor.domain.lifecycle import JobState
from conveyor.runtime.registry import TaskRegistry
from conveyor.server import Server
from conveyor.services.jobs import JobService
from conveyor.store.protocol import Store
from conveyor.testing import drain
from conveyor.web.app import create_app
from tests.integration.api.conftest import PASSWORD, Api, make_personas, server_settings
from tests.loopback import serving

pytestmark = pytest.mark.anyio

LOCAL = ["127.0.0.1/32"]


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it was sent."""

    port: int
    seen: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        seen.append({"path": request.path, "headers": dict(request.headers)})
        if request.path.startswith("/status/"):
            status = int(request.path.rsplit("/", 1)[1])
            return web.Response(status=status, text=f"status {status}")
        if request.path == "/redirect":
            return web.Response(status=302, headers={"Location": "http://10.0.0.5/"})
        if request.path == "/big":
            return web.Response(body=b"z" * 100_000, content_type="text/plain")
        echo = {"method": request.method, "body": body, "x_test": request.headers.get("X-Test")}
        return web.json_response(echo, headers={"ETag": '"v1"', "X-Other": "dropped"})

    async with serving(handle) as port:
        yield Receiver(port, seen)


def builtins(*, shell_tasks: bool = False, allow: list[str] = LOCAL) -> TaskRegistry:
    registry = TaskRegistry()
    BuiltinTasks(registry, http_allow=allow, shell_tasks=shell_tasks)
    return registry


async def run(store: Store, task: str, payload: Any, **options: Any) -> Job:
    """Enqueue one job as the CLI would, drain it with the built-ins, return it."""
    jobs = JobService(store, "default", shell_tasks=True)
    job = await jobs.enqueue(task, payload, options)
    await drain(store, builtins(shell_tasks=True))
    return await store.get_job("default", job.id)


async def last_attempt(store: Store, job: Job) -> Attempt:
    return (await store.list_attempts("default", job.id))[-1]


async def error_of(store: Store, job: Job) -> str:
    error = (await last_attempt(store, job)).error
    assert error is not None
    return error.message


# -- http -------------------------------------------------------------------------------


async def test_an_http_job_calls_the_receiver_and_stores_the_response(
    store: Store, receiver: Receiver
) -> None:
    payload = {
        "method": "post",
        "url": receiver.url("/echo"),
        "headers": {"X-Test": "yes"},
        "body": {"order": 7},
    }
    job = await run(store, "http", payload)
    assert (job.state, job.queue, job.max_attempts) == (JobState.COMPLETED, "http", 3)
    result = job.result
    assert result["status"] == 200
    assert result["headers"] == {
        "content-type": "application/json; charset=utf-8",
        "content-length": str(len(result["body"])),
        "etag": '"v1"',
    }
    assert json.loads(result["body"]) == {"method": "POST", "body": '{"order":7}', "x_test": "yes"}
    assert result["truncated"] is False
    assert result["elapsed_ms"] >= 0
    assert receiver.seen[0]["headers"]["Content-Type"] == "application/json"


async def test_a_string_body_is_sent_as_it_is(store: Store, receiver: Receiver) -> None:
    payload = {
        "method": "PUT",
        "url": receiver.url("/echo"),
        "body": "plain words",
        "headers": {"Content-Type": "text/plain"},
    }
    job = await run(store, "http", payload)
    assert json.loads(job.result["body"])["body"] == "plain words"
    assert receiver.seen[0]["headers"]["Content-Type"] == "text/plain"


async def test_a_large_response_body_is_capped(store: Store, receiver: Receiver) -> None:
    job = await run(store, "http", {"url": receiver.url("/big")})
    assert len(job.result["body"]) == 64 * 1024
    assert job.result["truncated"] is True


async def test_an_unexpected_status_fails_the_attempt_to_be_retried(
    store: Store, receiver: Receiver
) -> None:
    job = await run(
        store, "http", {"url": receiver.url("/status/503"), "expected_status": [200, 201]}
    )
    assert (job.state, job.attempt) == (JobState.RETRYABLE, 1)
    assert await error_of(store, job) == "expected 200 or 201, got 503: status 503"


async def test_any_2xx_is_expected_by_default_and_a_redirect_is_not_followed(
    store: Store, receiver: Receiver
) -> None:
    no_content = await run(store, "http", {"url": receiver.url("/status/204")})
    assert no_content.state is JobState.COMPLETED
    assert no_content.result["status"] == 204
    moved = await run(store, "http", {"url": receiver.url("/redirect")}, max_attempts=1)
    assert moved.state is JobState.DISCARDED
    assert await error_of(store, moved) == (
        "expected a 2xx status, got 302 (redirects are not followed; location: http://10.0.0.5/)"
    )
    assert [seen["path"] for seen in receiver.seen] == ["/status/204", "/redirect"]


async def test_an_expected_error_status_completes_the_job(store: Store, receiver: Receiver) -> None:
    job = await run(store, "http", {"url": receiver.url("/status/404"), "expected_status": 404})
    assert (job.state, job.result["status"], job.result["body"]) == (
        JobState.COMPLETED,
        404,
        "status 404",
    )


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({}, "url: is required"),
        ({"url": "http://127.0.0.1/", "method": "BREW"}, "method: must be one of DELETE, GET"),
        (
            {"url": "http://127.0.0.1/", "timeout": 301},
            "timeout: must be more than 0 and at most 300",
        ),
        ({"url": "http://127.0.0.1/", "timeout": "soon"}, "timeout: must be a number of seconds"),
        (
            {"url": "http://127.0.0.1/", "expected_status": "ok"},
            "expected_status: must be a status",
        ),
        ({"url": "http://127.0.0.1/", "headers": {"A": 1}}, "headers.A: must be a string"),
        ({"url": "http://127.0.0.1/", "header": {}}, "header: is not a field of this task"),
    ],
)
async def test_a_bad_payload_is_discarded_at_once_naming_the_field(
    store: Store, payload: dict[str, Any], problem: str
) -> None:
    job = await run(store, "http", payload)
    assert (job.state, job.attempt) == (JobState.DISCARDED, 1)
    message = await error_of(store, job)
    assert message.startswith(f"invalid http payload: {problem}"), message


async def test_an_address_outside_the_allowlist_is_refused_without_retry(
    store: Store, receiver: Receiver
) -> None:
    jobs = JobService(store, "default")
    refused = await jobs.enqueue("http", {"url": receiver.url("/echo")})
    wrong_scheme = await jobs.enqueue("http", {"url": "file:///etc/passwd"})
    await drain(store, builtins(allow=[]))
    job = await store.get_job("default", refused.id)
    assert (job.state, job.attempt) == (JobState.DISCARDED, 1)
    assert await error_of(store, job) == (
        "refused to call 127.0.0.1 (loopback address); "
        "add it to http_allow (CONVEYOR_HTTP_ALLOW) to permit it"
    )
    other = await store.get_job("default", wrong_scheme.id)
    assert other.state is JobState.DISCARDED
    assert "only http and https URLs may be called" in await error_of(store, other)
    assert receiver.seen == []


async def test_a_connection_failure_is_retried(store: Store) -> None:
    job = await run(store, "http", {"url": "http://127.0.0.1:1/"})
    assert (job.state, job.attempt) == (JobState.RETRYABLE, 1)
    assert "127.0.0.1:1" in await error_of(store, job)


# -- shell ------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its parent does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_shell_command_runs_and_its_output_is_stored(store: Store) -> None:
    job = await run(store, "shell", {"command": "echo out; echo err >&2"})
    assert (job.state, job.queue, job.max_attempts) == (JobState.COMPLETED, "shell", 1)
    assert job.result == {
        "exit_code": 0,
        "stdout": "out\n",
        "stderr": "err\n",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }


async def test_an_argv_runs_in_its_directory_with_a_minimal_environment(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "not-for-commands")
    payload = {"command": ["/bin/sh", "-c", "pwd; env"], "cwd": str(tmp_path), "env": {"X": "1"}}
    job = await run(store, "shell", payload)
    lines = job.result["stdout"].splitlines()
    assert lines[0] == str(tmp_path)
    names = {line.split("=", 1)[0] for line in lines[1:]}
    assert {"PATH", "LANG", "HOME", "X"} <= names
    assert "CONVEYOR_SECRET_KEY" not in names


async def test_a_non_zero_exit_fails_with_the_code_and_the_end_of_stderr(store: Store) -> None:
    job = await run(store, "shell", {"command": "echo starting; echo 'disk full' >&2; exit 3"})
    assert (job.state, job.attempt) == (JobState.DISCARDED, 1)
    assert await error_of(store, job) == "the command exited with code 3: disk full"


async def test_a_timeout_kills_the_whole_process_group(store: Store, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    command = f"sleep 60 & echo $! > {pid_file}; wait"
    began = asyncio.get_running_loop().time()
    job = await run(store, "shell", {"command": command, "timeout": 0.5})
    assert asyncio.get_running_loop().time() - began < 10
    assert job.state is JobState.DISCARDED
    assert await error_of(store, job) == (
        "the command ran longer than 0.5 s; its process group was killed"
    )
    assert not _alive(int(pid_file.read_text()))


async def test_the_job_timeout_also_kills_the_process_group(store: Store, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    command = f"sleep 60 & echo $! > {pid_file}; wait"
    job = await run(store, "shell", {"command": command}, timeout=0.5)
    assert job.state is JobState.DISCARDED
    assert await error_of(store, job) == "the job ran longer than 0.5 s"
    assert not _alive(int(pid_file.read_text()))


async def test_output_is_capped(store: Store) -> None:
    job = await run(store, "shell", {"command": "head -c 100000 /dev/zero | tr '\\0' a"})
    assert len(job.result["stdout"]) == 64 * 1024
    assert job.result["stdout_truncated"] is True
    assert job.result["stderr_truncated"] is False


async def test_a_bad_shell_payload_is_discarded_naming_the_field(store: Store) -> None:
    job = await run(store, "shell", {"command": ["ls", 3]})
    assert job.state is JobState.DISCARDED
    assert await error_of(store, job) == (
        "invalid shell payload: command: must hold only strings without NUL characters"
    )


async def test_shell_jobs_are_refused_while_shell_tasks_are_disabled(store: Store) -> None:
    jobs = JobService(store, "default", shell_tasks=False)
    with pytest.raises(InvalidInput) as caught:
        await jobs.enqueue("shell", {"command": "true"})
    assert caught.value.message == (
        "task: shell tasks are disabled; the operator enables them with CONVEYOR_SHELL_TASKS=true"
    )
    with pytest.raises(InvalidInput) as many:
        await jobs.enqueue_many([("http", {"url": "http://a.test/"}, None), ("shell", {}, None)])
    assert many.value.field == "jobs[1].task"
    assert await store.list_jobs("default", JobFilter()) == []
    assert builtins().names() == ["http"]


# -- the app ----------------------------------------------------------------------------


async def test_an_app_registers_http_and_shell_only_when_enabled(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONVEYOR_SHELL_TASKS", raising=False)
    assert Conveyor(migrated_url).registry.names() == ["http"]
    assert Conveyor(migrated_url, builtins=False).registry.names() == []
    assert Conveyor(migrated_url, shell_tasks=True).registry.names() == ["http", "shell"]
    monkeypatch.setenv("CONVEYOR_SHELL_TASKS", "true")
    app = Conveyor(migrated_url)
    assert app.registry.queues() == ["http", "shell"]
    try:
        job = await app.aio.enqueue("http", {"url": "http://a.test/"})
        assert (job.queue, job.max_attempts) == ("http", 3)
        assert (await app.aio.enqueue("shell", {"command": "true"})).queue == "shell"
    finally:
        await app.aio.close()


async def test_serve_applies_its_settings_to_the_built_ins_of_a_worker_app(
    migrated_url: str,
) -> None:
    app = Conveyor(migrated_url, shell_tasks=False, http_allow=["hooks.internal"])
    server = Server(server_settings(migrated_url, shell_tasks=True, http_allow=LOCAL), app)
    await server.start()
    try:
        assert app.registry.names() == ["http", "shell"]
        assert app.builtin_tasks is not None
        policy = app.builtin_tasks.http.policy
        assert policy.allows_host("hooks.internal")
        assert policy.allows_address(ipaddress.ip_address("127.0.0.1"))
        assert server.jobs_for(_owner()).shell_tasks is True
    finally:
        await server.stop()


def _owner() -> Principal:
    return Principal(tenant_id="default", scopes=ROLE_SCOPES[Role.OWNER], role=Role.OWNER)


# -- through the API ----------------------------------------------------------------------


@asynccontextmanager
async def api_of(url: str, **overrides: Any) -> AsyncIterator[Api]:
    """A started server with these settings (and no worker app), and a client for it."""
    server = Server(server_settings(url, **overrides))
    await server.start()
    transport = httpx.ASGITransport(app=create_app(server))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://conveyor.test") as c:
            yield Api(c, server)
    finally:
        await server.stop()


@pytest.fixture
async def shell_api(migrated_url: str) -> AsyncIterator[Api]:
    async with api_of(migrated_url, shell_tasks=True) as api:
        yield await make_personas(api)


SHELL_JOB = {"task": "shell", "payload": {"command": "true"}}


async def test_only_owners_admins_and_admin_keys_may_create_shell_jobs(shell_api: Api) -> None:
    api = shell_api
    body = {"email": "dave@acme.test", "role": "member", "password": PASSWORD}
    assert (await api.call("POST", "/api/v1/users", "alice", json=body)).status_code == 201
    api.headers["dave"] = await api.login("dave@acme.test")
    api.headers["writer-key"] = await _key(api, ["jobs:write"])
    api.headers["admin-key"] = await _key(api, ["jobs:write", "admin"])
    for who in ("alice", "admin", "admin-key"):
        created = await api.call("POST", "/api/v1/jobs", who, json=SHELL_JOB)
        assert created.status_code == 201, (who, created.text)
        assert created.json()["queue"] == "shell"
    for who in ("dave", "writer-key", "carl"):
        refused = await api.call("POST", "/api/v1/jobs", who, json=SHELL_JOB)
        assert refused.status_code == 403, (who, refused.text)
    refused = await api.call("POST", "/api/v1/jobs", "dave", json=SHELL_JOB)
    assert refused.json()["detail"] == (
        "only tenant owners, admin API keys and platform admins may create shell jobs"
    )
    batch = {"jobs": [{"task": "http", "payload": {"url": "http://a.test/"}}, SHELL_JOB]}
    assert (await api.call("POST", "/api/v1/jobs/batch", "dave", json=batch)).status_code == 403
    http_job = {"task": "http", "payload": {"url": "http://a.test/"}}
    assert (await api.call("POST", "/api/v1/jobs", "dave", json=http_job)).status_code == 201


async def test_running_a_shell_job_again_takes_the_right_to_create_one(shell_api: Api) -> None:
    api = shell_api
    body = {"email": "dave@acme.test", "role": "member", "password": PASSWORD}
    assert (await api.call("POST", "/api/v1/users", "alice", json=body)).status_code == 201
    api.headers["dave"] = await api.login("dave@acme.test")
    job = (await api.call("POST", "/api/v1/jobs", "alice", json=SHELL_JOB)).json()
    cancelled = await api.call("POST", f"/api/v1/jobs/{job['id']}/cancel", "alice")
    assert cancelled.status_code == 200, cancelled.text
    refused = await api.call("POST", f"/api/v1/jobs/{job['id']}/retry", "dave")
    assert refused.status_code == 403, refused.text
    bulk = await api.call("POST", "/api/v1/jobs/bulk/retry", "dave", json={"task": "shell"})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["changed"] == []
    again = await api.call("POST", f"/api/v1/jobs/{job['id']}/retry", "alice")
    assert again.status_code == 200, again.text


async def _key(api: Api, scopes: list[str]) -> dict[str, str]:
    made = await api.call("POST", "/api/v1/api-keys", "alice", json={"name": "k", "scopes": scopes})
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["key"]}


async def test_shell_jobs_are_refused_through_the_api_while_disabled(migrated_url: str) -> None:
    async with api_of(migrated_url) as api:
        admin = {"headers": await api.admin()}
        refused = await api.client.post("/api/v1/jobs", json=SHELL_JOB, **admin)
        assert refused.status_code == 422
        assert refused.json()["field"] == "task"
        assert "CONVEYOR_SHELL_TASKS=true" in refused.json()["detail"]
        batch = await api.client.post("/api/v1/jobs/batch", json={"jobs": [SHELL_JOB]}, **admin)
        assert batch.json()["field"] == "jobs[0].task"


async def test_a_server_without_a_worker_app_runs_http_jobs_and_no_other_task(
    migrated_url: str, receiver: Receiver
) -> None:
    async with api_of(migrated_url, http_allow=LOCAL) as api:
        admin = {"headers": await api.admin()}
        other = {"task": "reports.build", "payload": {}}
        other_id = (await api.client.post("/api/v1/jobs", json=other, **admin)).json()["id"]
        http_job = {"task": "http", "payload": {"url": receiver.url("/echo")}}
        created = await api.client.post("/api/v1/jobs", json=http_job, **admin)
        assert (created.status_code, created.json()["queue"]) == (201, "http")
        done = await _wait_finished(api, created.json()["id"], admin)
        assert done["state"] == "completed", done
        assert done["result"]["status"] == 200
        untouched = await api.client.get(f"/api/v1/jobs/{other_id}", **admin)
        assert untouched.json()["job"]["state"] == "available"
        assert untouched.json()["job"]["attempt"] == 0


async def _wait_finished(api: Api, job_id: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    for _ in range(200):
        job: dict[str, Any] = (await api.client.get(f"/api/v1/jobs/{job_id}", **kwargs)).json()[
            "job"
        ]
        if job["state"] in ("completed", "discarded", "retryable"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_the_environment_switch_reads_like_the_settings() -> None:
    assert shell_tasks_from_env({}) is False
    assert shell_tasks_from_env({"CONVEYOR_SHELL_TASKS": "Yes"}) is True
    assert shell_tasks_from_env({"CONVEYOR_SHELL_TASKS": "off"}) is False
    with pytest.raises(InvalidInput, match="CONVEYOR_SHELL_TASKS"):
        shell_tasks_from_env({"CONVEYOR_SHELL_TASKS": "sometimes"})
