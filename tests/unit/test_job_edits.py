"""job_edit(): the same checks as new_job, field by field; what an edit changes and
the state it leaves the job in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import EDITABLE_FIELDS, Job, job_edit, new_job
from conveyor.domain.lifecycle import JobState, NotEditable
from tests.unit.test_jobs import BAD_FIELDS, NOW

S = JobState

EDIT_BAD_FIELDS = [
    (label, fields, named)
    for label, fields, named in BAD_FIELDS
    if set(fields) <= EDITABLE_FIELDS | {"delay"}
]


def _job(state: JobState = S.SCHEDULED, **fields: Any) -> Job:
    request = new_job("report.build", {"n": 1}, now=NOW, delay=60, **fields)
    return request.as_job(7, state, NOW)


def test_every_editable_field_is_checked_by_the_same_rules_as_on_enqueue() -> None:
    assert len(EDIT_BAD_FIELDS) > 30
    assert {named for _, _, named in EDIT_BAD_FIELDS} >= EDITABLE_FIELDS | {"delay"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [(fields, named) for _, fields, named in EDIT_BAD_FIELDS],
    ids=[label for label, _, _ in EDIT_BAD_FIELDS],
)
def test_a_bad_field_is_refused_with_its_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        job_edit(fields, now=NOW)
    assert caught.value.field == named


@pytest.mark.parametrize("name", ["task", "message_id", "immediate", "state", "attempt"])
def test_a_field_that_cannot_be_edited_is_refused_by_name(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        job_edit({"priority": 1, name: "x"}, now=NOW)
    assert caught.value.field == name
    assert "cannot be edited" in caught.value.problem


@pytest.mark.parametrize("name", ["priority", "queue", "max_attempts"])
def test_a_field_without_a_default_needs_a_value(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        job_edit({name: None}, now=NOW)
    assert caught.value.field == name


def test_null_gives_what_a_job_created_without_the_field_gets() -> None:
    edit = job_edit(
        {"payload": None, "key": None, "assignee": None, "timeout": None, "tags": None},
        now=NOW,
    )
    assert edit.changes == {
        "payload": {},
        "key": None,
        "assignee": None,
        "timeout": None,
        "tags": (),
    }
    assert job_edit({"run_at": None}, now=NOW).changes == {"run_at": NOW}


def test_delay_sets_run_at_from_now_and_run_at_is_kept_in_utc() -> None:
    assert job_edit({"delay": 90}, now=NOW).changes == {"run_at": NOW + timedelta(seconds=90)}
    elsewhere = datetime(2030, 6, 1, 14, 0, tzinfo=UTC).astimezone()
    assert job_edit({"run_at": elsewhere}, now=NOW).changes["run_at"].tzinfo is UTC


def test_apply_changes_only_the_fields_given() -> None:
    job = _job(key="k-1", tags=["a"])
    edited = job_edit({"payload": {"n": 2}, "priority": 1, "tags": ["b", "c"]}, now=NOW).apply(job)
    assert (edited.payload, edited.priority, edited.tags) == ({"n": 2}, 1, ("b", "c"))
    assert (edited.key, edited.queue, edited.run_at, edited.id) == (
        job.key,
        job.queue,
        job.run_at,
        job.id,
    )


def test_changed_fields_leave_out_values_that_stay_the_same() -> None:
    job = _job(priority=3)
    edit = job_edit({"priority": 3, "payload": {"n": 2}, "key": None}, now=NOW)
    assert edit.changed_fields(job) == ["payload"]
    data = edit.event_data(job, S.SCHEDULED)
    assert data == {"fields": ["payload"], "from": "scheduled", "to": "scheduled"}


@pytest.mark.parametrize("state", [S.SCHEDULED, S.AVAILABLE])
def test_a_new_run_at_decides_between_scheduled_and_available(state: JobState) -> None:
    job = _job(state)
    assert job_edit({"delay": 0}, now=NOW).state_after(job, NOW) is S.AVAILABLE
    assert job_edit({"delay": 5}, now=NOW).state_after(job, NOW) is S.SCHEDULED
    assert job_edit({"payload": {}}, now=NOW).state_after(job, NOW) is state


@pytest.mark.parametrize("state", [S.RUNNING, S.RETRYABLE, S.COMPLETED, S.CANCELLED])
def test_a_job_that_has_started_cannot_be_edited(state: JobState) -> None:
    with pytest.raises(NotEditable) as caught:
        job_edit({"payload": {}}, now=NOW).state_after(_job(state), NOW)
    assert caught.value.state is state
