"""Batches of results as the stores send them: a plain completion, written from a
template, says the same as its full encoding (an absent key reads as NULL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import ARRIVAL_EVENT
from conveyor.domain.jobs import ErrorInfo, check_name
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from conveyor.store.postgres import claims as postgres
from conveyor.store.sqlite import claims as sqlite

NOW = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)


def ended(job_id: int, state: JobState, **fields: Any) -> Finish:
    return Finish(job_id, 2, state, ARRIVAL_EVENT[state], **fields)


BATCH = [
    ended(7, JobState.COMPLETED),
    ended(8, JobState.COMPLETED, result={"rows": 3}),
    ended(9, JobState.RETRYABLE, run_at=NOW, error=ErrorInfo("KeyError", "'x'", "tb")),
    ended(10, JobState.DISCARDED, error=ErrorInfo("Boom", "it broke")),
    ended(11, JobState.COMPLETED),
]


def without_nulls(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value is not None}


def test_only_completions_with_nothing_else_to_record_are_plain() -> None:
    assert [item.plain for item in BATCH] == [True, False, False, False, True]


def test_sqlite_batch_reads_as_the_full_encoding_of_each_item() -> None:
    now = NOW.timestamp()
    sent = json.loads(sqlite._finish_items(BATCH, now))
    full = [sqlite._finish_item(item, now) for item in BATCH]
    assert [without_nulls(item) for item in sent] == [without_nulls(item) for item in full]


def test_postgres_batch_reads_as_the_full_encoding_of_each_item() -> None:
    sent = json.loads(postgres._finish_params(BATCH, NOW)["items"])
    full = [
        postgres._finish_item(item, position, NOW.isoformat())
        for position, item in enumerate(BATCH, start=1)
    ]
    assert [without_nulls(item) for item in sent] == [without_nulls(item) for item in full]
    assert sent[0]["finished_at"] == NOW.isoformat()
    assert sent[0]["data"] == {"attempt": 2}


def test_sqlite_completion_event_data_names_the_attempt_and_the_task() -> None:
    assert json.loads(sqlite._finish_data("reports.build", BATCH[0])) == {
        "attempt": 2,
        "task": "reports.build",
    }
    assert json.loads(sqlite._finish_data("reports.build", BATCH[2])) == {
        "attempt": 2,
        "task": "reports.build",
        "error": {"type": "KeyError", "message": "'x'"},
        "retry_at": NOW.isoformat(),
    }


def test_completion_event_data_stays_json_whatever_the_task_name() -> None:
    for task in ('a"b\\c', "abc\n", "tâche"):
        assert json.loads(sqlite._finish_data(task, BATCH[0])) == {"attempt": 2, "task": task}


def test_a_name_ending_in_a_newline_is_refused() -> None:
    assert check_name("task", "reports.build") == "reports.build"
    for bad in ("abc\n", "abc\r", "a b", ""):
        with pytest.raises(InvalidInput):
            check_name("task", bad)
