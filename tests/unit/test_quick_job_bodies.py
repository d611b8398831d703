"""The hot job routes' quick path: it takes only bodies it reads exactly as FastAPI's
ordinary path would, and the job models it answers with are those of the domain."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Message

from conveyor.domain.jobs import ErrorInfo, Job
from conveyor.domain.lifecycle import JobState
from conveyor.web.quick import UnreadBody, json_body
from conveyor.web.schemas import JobBatchIn, JobIn, JobList, JobOut

pytestmark = pytest.mark.anyio

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

WELL_FORMED = [
    b'{"task": "t"}',
    b' {"task": "t", "payload": {"a": [1, 2.5, null, true]}}\n',
    b'{"task": "t", "priority": "5", "delay": "1.5", "immediate": "yes"}',
    b'{"task": "t", "priority": 5.0, "run_at": 1900000000, "tags": ["a"]}',
    b'{"task": "t", "run_at": "2030-01-01T00:00:00+01:00", "timeout": 30}',
    b'{"task": "t", "payload": 123456789012345678901234567890}',
    b'{"task": "t", "payload": {"k": 1, "k": 2}, "task": "u"}',
    b'{"task": "t", "payload": "\\ud83d\\ude00 \\u00e9"}',
]
"""Bodies both paths read, to the same values."""

NOT_TAKEN = [
    b"",
    b'{"task": ',
    b'{"task": "t",}',
    b'{"task": "t"} {}',
    b'\xef\xbb\xbf{"task": "t"}',
    b'{"task": "\xff"}',
    b'{"task": "t", "payload": "\\ud800"}',
    b'{"task": "t", "payload": "a\tb"}',
    b'{"task": 1}',
    b'{"task": "t", "priority": 12}',
    b'{"task": "t", "prio": 1}',
    b"[]",
]
"""Bodies the quick path leaves to the ordinary one (which names what is wrong)."""


def _request(body: bytes, content_type: str | None = "application/json") -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type else []
    scope = {"type": "http", "method": "POST", "path": "/api/v1/jobs", "headers": headers}

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


@pytest.mark.parametrize("body", WELL_FORMED)
async def test_well_formed_bodies_read_as_the_ordinary_path_reads_them(body: bytes) -> None:
    quick = await json_body(_request(body), JobIn)
    assert quick is not None
    ordinary = JobIn.model_validate(json.loads(body))
    assert quick.model_dump() == ordinary.model_dump()
    assert quick.options() == ordinary.options()


@pytest.mark.parametrize("body", NOT_TAKEN)
async def test_other_bodies_are_left_to_the_ordinary_path(body: bytes) -> None:
    assert await json_body(_request(body), JobIn) is None


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json; charset=utf-8"])
async def test_other_media_types_are_left_to_the_ordinary_path(content_type: str | None) -> None:
    assert await json_body(_request(b'{"task": "t"}', content_type), JobIn) is None


async def test_a_batch_reads_every_job() -> None:
    body = b'{"jobs": [{"task": "a"}, {"task": "b", "priority": 1}]}'
    batch = await json_body(_request(body), JobBatchIn)
    assert batch is not None
    assert [(job.task, job.options()) for job in batch.jobs] == [("a", {}), ("b", {"priority": 1})]
    assert await json_body(_request(b'{"jobs": []}'), JobBatchIn) is None


async def test_a_body_that_cannot_be_read_is_reported_with_its_error() -> None:
    failure = RuntimeError("the client left")

    async def receive() -> Message:
        raise failure

    scope = {"type": "http", "method": "POST", "headers": [(b"content-type", b"application/json")]}
    with pytest.raises(UnreadBody) as raised:
        await json_body(Request(scope, receive), JobIn)
    assert raised.value.error is failure


def _job(**changes: object) -> Job:
    fields: dict[str, object] = {
        "id": 7,
        "tenant_id": "acme",
        "task": "reports.build",
        "queue": "default",
        "state": JobState.AVAILABLE,
        "priority": 5,
        "run_at": NOW,
        "payload": {"customer": 42},
        "attempt": 0,
        "max_attempts": 3,
        "timeout": None,
        "message_id": None,
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "key": None,
        "tags": (),
        "assignee": None,
        "immediate": False,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Job(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_job_is_shown_with_every_field_of_the_api() -> None:
    job = _job(
        tags=("a", "b"),
        timeout=30,
        progress=1,
        error=ErrorInfo("ValueError", "bad", "Traceback"),
        worker_id="w1",
        task_version=2,
    )
    shown = JobOut.of(job)
    assert list(shown.model_dump()) == list(JobOut.model_fields)
    assert shown.tags == ["a", "b"]
    assert shown.timeout == 30.0
    assert shown.progress == 1.0
    assert shown.error is not None
    assert shown.error.model_dump() == {
        "type": "ValueError",
        "message": "bad",
        "traceback": "Traceback",
    }
    assert shown.task_version == 2
    assert '"timeout":30.0' in shown.model_dump_json()
    assert "tenant_id" not in shown.model_dump_json()


def test_a_list_of_jobs_shows_each_as_one_job_is_shown() -> None:
    jobs = [_job(id=1), _job(id=2, error=ErrorInfo("E", "m"))]
    assert JobList.of(jobs) == JobList(items=[JobOut.of(job) for job in jobs])
    assert JobList.of([]).items == []


def test_a_job_that_breaks_the_api_schema_is_not_shown() -> None:
    with pytest.raises(ValidationError):
        JobOut.of(_job(state="unknown"))
