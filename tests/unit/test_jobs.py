"""new_job(): every field is checked and a bad one is named; the defaults; the initial state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    DEFAULT_TENANT,
    MAX_PAYLOAD_BYTES,
    ErrorInfo,
    new_job,
    utcnow,
)
from conveyor.domain.lifecycle import JobState

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("empty task", {"task": ""}, "task"),
    ("task with a space", {"task": "send email"}, "task"),
    ("task starting with a dot", {"task": ".hidden"}, "task"),
    ("task of 129 characters", {"task": "t" * 129}, "task"),
    ("task not a string", {"task": 12}, "task"),
    ("empty queue", {"queue": ""}, "queue"),
    ("queue with a slash", {"queue": "a/b"}, "queue"),
    ("queue None", {"queue": None}, "queue"),
    ("priority -1", {"priority": -1}, "priority"),
    ("priority 10", {"priority": 10}, "priority"),
    ("priority True", {"priority": True}, "priority"),
    ("priority '1'", {"priority": "1"}, "priority"),
    ("priority 1.0", {"priority": 1.0}, "priority"),
    ("max_attempts 0", {"max_attempts": 0}, "max_attempts"),
    ("max_attempts -3", {"max_attempts": -3}, "max_attempts"),
    ("max_attempts 1001", {"max_attempts": 1001}, "max_attempts"),
    ("max_attempts True", {"max_attempts": True}, "max_attempts"),
    ("timeout 0", {"timeout": 0}, "timeout"),
    ("timeout negative", {"timeout": -1.5}, "timeout"),
    ("timeout True", {"timeout": True}, "timeout"),
    ("timeout '10'", {"timeout": "10"}, "timeout"),
    ("run_at naive", {"run_at": datetime(2030, 1, 1, 12, 0)}, "run_at"),
    ("run_at a string", {"run_at": "2030-01-01T12:00:00Z"}, "run_at"),
    ("run_at and delay", {"run_at": NOW, "delay": 5}, "run_at"),
    ("delay negative", {"delay": -1}, "delay"),
    ("delay negative timedelta", {"delay": timedelta(seconds=-1)}, "delay"),
    ("delay True", {"delay": True}, "delay"),
    ("delay '5'", {"delay": "5"}, "delay"),
    ("payload a set", {"payload": {1, 2}}, "payload"),
    ("payload an object", {"payload": {"at": object()}}, "payload"),
    ("payload NaN", {"payload": {"x": float("nan")}}, "payload"),
    ("payload too large", {"payload": "x" * MAX_PAYLOAD_BYTES}, "payload"),
    ("tags a string", {"tags": "urgent"}, "tags"),
    ("tags with an empty tag", {"tags": ["ok", ""]}, "tags"),
    ("tags with a number", {"tags": ["ok", 3]}, "tags"),
    ("tags with a 65-character tag", {"tags": ["t" * 65]}, "tags"),
    ("message_id empty", {"message_id": ""}, "message_id"),
    ("message_id too long", {"message_id": "m" * 256}, "message_id"),
    ("message_id a number", {"message_id": 17}, "message_id"),
    ("key empty", {"key": ""}, "key"),
    ("assignee empty", {"assignee": ""}, "assignee"),
    ("content_type empty", {"content_type": ""}, "content_type"),
    ("content_encoding empty", {"content_encoding": ""}, "content_encoding"),
    ("tenant_id empty", {"tenant_id": ""}, "tenant_id"),
]


@pytest.mark.parametrize(
    ("fields", "named"),
    [(fields, named) for _, fields, named in BAD_FIELDS],
    ids=[label for label, _, _ in BAD_FIELDS],
)
def test_a_bad_field_is_refused_with_its_name(fields: dict[str, Any], named: str) -> None:
    arguments: dict[str, Any] = {"task": "report.build", "now": NOW, **fields}
    task = arguments.pop("task")
    with pytest.raises(InvalidInput) as caught:
        new_job(task, **arguments)
    assert caught.value.field == named
    assert caught.value.problem
    assert str(caught.value).startswith(f"{named}: ")


@pytest.mark.parametrize(
    "delay",
    [float("nan"), float("inf"), 1e12],
    ids=["nan", "infinity", "beyond year 9999"],
)
def test_a_delay_that_is_not_a_usable_number_of_seconds_is_refused_as_input(
    delay: float,
) -> None:
    # Bad input must be a clear InvalidInput, never a ValueError/OverflowError (a 500).
    with pytest.raises(InvalidInput) as caught:
        new_job("report.build", delay=delay, now=NOW)
    assert caught.value.field == "delay"


def test_a_timeout_of_nan_seconds_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        new_job("report.build", timeout=float("nan"), now=NOW)
    assert caught.value.field == "timeout"


def test_a_payload_just_under_the_limit_is_accepted() -> None:
    payload = "x" * (MAX_PAYLOAD_BYTES - 2)  # two bytes for the JSON quotes
    assert len(json.dumps(payload).encode()) == MAX_PAYLOAD_BYTES
    assert new_job("report.build", payload, now=NOW).payload == payload


def test_the_defaults_describe_an_ordinary_job_due_now() -> None:
    job = new_job("report.build", now=NOW)
    assert job.task == "report.build"
    assert job.payload == {}
    assert job.queue == DEFAULT_QUEUE
    assert job.priority == DEFAULT_PRIORITY == 5
    assert job.run_at == NOW
    assert job.max_attempts == DEFAULT_MAX_ATTEMPTS == 3
    assert job.timeout is None
    assert job.message_id is None
    assert job.content_type == "application/json"
    assert job.content_encoding == "utf-8"
    assert job.key is None
    assert job.tags == ()
    assert job.assignee is None
    assert job.immediate is False
    assert job.tenant_id == DEFAULT_TENANT


def test_every_field_given_is_kept() -> None:
    job = new_job(
        "crm.contact.update",
        {"id": 7, "fields": {"name": "Ana"}},
        queue="crm",
        priority=0,
        max_attempts=1000,
        timeout=30,
        message_id="msg-1",
        content_type="application/vnd.crm+json",
        content_encoding="gzip",
        key="contact:7",
        tags=["crm", "update"],
        assignee="tech-1",
        immediate=True,
        now=NOW,
    )
    assert job.payload == {"id": 7, "fields": {"name": "Ana"}}
    assert (job.queue, job.priority, job.max_attempts) == ("crm", 0, 1000)
    assert job.timeout == 30.0
    assert isinstance(job.timeout, float)
    assert job.message_id == "msg-1"
    assert (job.content_type, job.content_encoding) == ("application/vnd.crm+json", "gzip")
    assert (job.key, job.assignee, job.immediate) == ("contact:7", "tech-1", True)
    assert job.tags == ("crm", "update")


def test_payload_is_stored_as_compact_json() -> None:
    job = new_job("report.build", {"a": [1, 2], "b": None}, now=NOW)
    assert job.payload_json() == '{"a":[1,2],"b":null}'


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, 0, False, {"nested": {"deep": [None]}}])
def test_any_json_value_is_a_payload(payload: Any) -> None:
    assert new_job("report.build", payload, now=NOW).payload == payload


def test_delay_sets_run_at_from_now() -> None:
    assert new_job("report.build", delay=90, now=NOW).run_at == NOW + timedelta(seconds=90)
    assert new_job("report.build", delay=timedelta(minutes=2), now=NOW).run_at == NOW + timedelta(
        minutes=2
    )


def test_run_at_in_another_zone_is_kept_in_utc() -> None:
    sao_paulo = timezone(timedelta(hours=-3))
    job = new_job("report.build", run_at=datetime(2030, 6, 1, 9, 0, tzinfo=sao_paulo), now=NOW)
    assert job.run_at == NOW
    assert job.run_at.tzinfo is UTC


def test_a_job_due_later_starts_scheduled() -> None:
    job = new_job("report.build", run_at=NOW + timedelta(seconds=1), now=NOW)
    assert job.initial_state(NOW) is JobState.SCHEDULED


@pytest.mark.parametrize(
    "fields",
    [{}, {"delay": 0}, {"run_at": NOW}, {"run_at": NOW - timedelta(days=1)}],
    ids=["no time", "zero delay", "run_at now", "run_at in the past"],
)
def test_a_job_due_now_or_earlier_starts_available(fields: dict[str, Any]) -> None:
    job = new_job("report.build", now=NOW, **fields)
    assert job.initial_state(NOW) is JobState.AVAILABLE


def test_a_scheduled_job_is_available_once_its_time_comes() -> None:
    job = new_job("report.build", delay=60, now=NOW)
    assert job.initial_state(NOW + timedelta(seconds=59)) is JobState.SCHEDULED
    assert job.initial_state(NOW + timedelta(seconds=60)) is JobState.AVAILABLE


def test_error_info_round_trips_through_its_stored_form() -> None:
    info = ErrorInfo("ValueError", "bad cnpj", "Traceback ...")
    assert ErrorInfo.from_dict(info.to_dict()) == info
    assert ErrorInfo.from_dict({"type": "E", "message": "m"}) == ErrorInfo("E", "m", "")


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul() -> None:
    job = new_job("t", {"path": "C:\\u0000dir"}, now=utcnow())
    assert job.payload == {"path": "C:\\u0000dir"}
    with pytest.raises(InvalidInput, match="payload: must not contain NUL"):
        new_job("t", {"path": "C:\\\u0000dir"}, now=utcnow())
