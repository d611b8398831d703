"""Mail rules: what a rule accepts, which job events it mails on, to whom, and how a
failed send is retried."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.mail import (
    MailEvent,
    ScopeKind,
    job_dedupe_key,
    next_attempt_at,
    recipients,
    rule_matches,
    rule_spec,
    schedule_id_of,
)
from conveyor.domain.schedules import message_id
from conveyor.services.jobs import owner_email

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def job(task: str = "cnpj.lookup", creator: str | None = "Alice@Acme.test", **fields: object):  # type: ignore[no-untyped-def]
    made = new_job(task, {"cnpj": "1"}, created_by=creator, now=NOW, **fields).as_job(  # type: ignore[arg-type]
        42, JobState.AVAILABLE, NOW
    )
    return made


def test_a_rule_is_read_from_its_scope_events_and_recipients() -> None:
    spec = rule_spec("task:cnpj.lookup", ["failed", "started", "failed"], ["OWNER", "Ops@X.test"])
    assert spec.scope_kind is ScopeKind.TASK and spec.scope_value == "cnpj.lookup"
    assert spec.on == (MailEvent.FAILED, MailEvent.STARTED)
    assert spec.to == ("owner", "ops@x.test")
    assert rule_spec("job:42", ["succeeded"], ["a@b.test"]).scope_kind is ScopeKind.JOB


@pytest.mark.parametrize(
    ("scope", "on", "to", "field"),
    [
        ("queue:mail", ["started"], ["owner"], "scope"),
        ("task:", ["started"], ["owner"], "scope"),
        ("job:abc", ["started"], ["owner"], "scope"),
        ("schedule:0", ["started"], ["owner"], "scope"),
        ("task:x", [], ["owner"], "on"),
        ("task:x", ["cancelled"], ["owner"], "on"),
        ("task:x", ["started"], [], "to"),
        ("task:x", ["started"], ["not an address"], "to"),
        ("task:x", ["started"], [f"u{i}@x.test" for i in range(21)], "to"),
    ],
)
def test_a_bad_rule_names_its_field(scope: str, on: list[str], to: list[str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        rule_spec(scope, on, to)
    assert caught.value.field == field


def test_a_task_rule_matches_its_task_and_events_only() -> None:
    spec = rule_spec("task:cnpj.lookup", ["started", "failed"], ["owner"])
    assert rule_matches(spec, job(), MailEvent.STARTED)
    assert rule_matches(spec, job(), MailEvent.FAILED)
    assert not rule_matches(spec, job(), MailEvent.SUCCEEDED)
    assert not rule_matches(spec, job("other.task"), MailEvent.STARTED)


def test_a_job_rule_and_a_schedule_rule() -> None:
    fired = job(message_id=message_id(7, NOW))
    assert schedule_id_of(fired) == 7 and schedule_id_of(job()) is None
    assert rule_matches(rule_spec("schedule:7", ["started"], ["owner"]), fired, MailEvent.STARTED)
    assert not rule_matches(
        rule_spec("schedule:8", ["started"], ["owner"]), fired, MailEvent.STARTED
    )
    assert rule_matches(rule_spec("job:42", ["started"], ["owner"]), job(), MailEvent.STARTED)
    assert not rule_matches(rule_spec("job:43", ["started"], ["owner"]), job(), MailEvent.STARTED)


def test_owner_is_the_jobs_creator_and_nobody_for_a_key() -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], ["owner", "ops@x.test", "alice@acme.test"])
    members = {"alice@acme.test"}
    assert recipients(spec, job(), members) == ["alice@acme.test", "ops@x.test"]
    no_creator = replace(job(), created_by=None)
    assert recipients(spec, no_creator, members) == ["ops@x.test", "alice@acme.test"]


def test_owner_who_left_the_tenant_gets_nothing_but_a_listed_address_does() -> None:
    spec = rule_spec("task:cnpj.lookup", ["started"], ["owner", "ops@x.test"])
    assert recipients(spec, job(), members={"bob@acme.test"}) == ["ops@x.test"]
    spec = rule_spec("task:cnpj.lookup", ["started"], ["owner", "alice@acme.test"])
    assert recipients(spec, job(), members=set()) == ["alice@acme.test"]


def test_the_dedupe_key_names_job_event_and_address() -> None:
    assert job_dedupe_key(42, MailEvent.STARTED, "a@x.test") == "job:42:started:a@x.test"


def test_retries_back_off_exponentially_for_a_day_then_stop() -> None:
    rng = random.Random(1)
    waits = [next_attempt_at(n, NOW, NOW, rng) - NOW for n in range(1, 10)]  # type: ignore[operator]
    assert timedelta(seconds=24) <= waits[0] <= timedelta(seconds=36)
    assert all(b > a for a, b in itertools.pairwise(waits[:6]))
    assert max(waits) <= timedelta(hours=1.2)
    assert next_attempt_at(3, NOW, NOW + timedelta(hours=23), rng) is not None
    assert next_attempt_at(30, NOW, NOW + timedelta(hours=24), rng) is None


def test_a_schedules_jobs_count_as_created_by_its_owner_user() -> None:
    assert owner_email("user:alice@acme.test") == "alice@acme.test"
    assert owner_email("key:k_123") is None
    assert owner_email("user:cli:root") is None
