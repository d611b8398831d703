"""What an agent sees of an event: the job's own data, never who acted."""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor.domain.events import AGENT_EVENT_KEYS, Event, as_agent_sees_it


def test_an_agent_sees_the_jobs_own_data_and_not_who_acted() -> None:
    data = {"reason": "duplicate", "state": "cancelled", "by": "alice@acme.test", "ip": "10.0.0.1"}
    event = Event(1, "acme", "job.cancelled", 7, data, datetime(2026, 1, 1, tzinfo=UTC))
    seen = as_agent_sees_it(event)
    assert seen.data == {"reason": "duplicate", "state": "cancelled"}
    assert (seen.id, seen.type, seen.job_id, seen.created_at) == (
        1,
        "job.cancelled",
        7,
        event.created_at,
    )
    assert event.data["by"] == "alice@acme.test"  # the stored event is not changed


def test_the_agent_keys_name_no_person() -> None:
    assert not {"by", "actor", "email", "user", "created_by", "ip"} & AGENT_EVENT_KEYS
