"""Rendering mails: what a start, a finish and a summary mail say, HTML escaping, and
the operator's templates winning over the built-in ones by name."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import ErrorInfo, new_job
from conveyor.domain.lifecycle import JobState
from conveyor.domain.mail import DailySummary, MailEvent, SummaryJob
from conveyor.mail.rendering import Renderer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE = "https://conveyor.example.com"


def a_job():  # type: ignore[no-untyped-def]
    made = new_job(
        "cnpj.lookup",
        {"cnpj": "12.345.678/0001-90", "note": "<b>x</b>"},
        key="12345678000190",
        created_by="alice@acme.test",
        now=NOW,
    )
    return made.as_job(42, JobState.RUNNING, NOW)


def test_the_start_mail_names_the_job_its_task_key_payload_and_link() -> None:
    mail = Renderer(BASE).job_mail(MailEvent.STARTED, a_job())
    assert mail.subject == "[Conveyor] Job #42 started: cnpj.lookup (12345678000190)"
    for text in (mail.text, mail.html):
        assert "cnpj.lookup" in text and "12345678000190" in text
        assert f"{BASE}/jobs/42" in text and "12.345.678/0001-90" in text
    assert "State:    running" in mail.text


def test_the_finish_mails_say_success_or_error_and_differ_from_the_start() -> None:
    renderer = Renderer(BASE)
    started = renderer.job_mail(MailEvent.STARTED, a_job())
    done = renderer.job_mail(MailEvent.SUCCEEDED, replace(a_job(), finished_at=NOW))
    failing = replace(a_job(), error=ErrorInfo("LookupError", "CNPJ not found"))
    failed = renderer.job_mail(MailEvent.FAILED, failing)
    assert "success" in done.text and "succeeded" in done.subject
    assert "error" in failed.text and "LookupError: CNPJ not found" in failed.text
    assert "CNPJ not found" in failed.html
    assert len({started.subject, done.subject, failed.subject}) == 3
    assert started.text != done.text != failed.text


def test_html_is_escaped_and_text_is_not() -> None:
    mail = Renderer(BASE).job_mail(MailEvent.STARTED, a_job())
    assert "&lt;b&gt;x&lt;/b&gt;" in mail.html and "<b>x</b>" not in mail.html
    assert "<b>x</b>" in mail.text


def test_an_operator_template_wins_by_name_and_a_subject_stays_on_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "job_started.subject.txt").write_text("Go\nBcc: evil@x.test {{ job.id }}")
    (tmp_path / "job_started.txt").write_text("Custom start of {{ job.task }}")
    mail = Renderer(BASE, tmp_path).job_mail(MailEvent.STARTED, a_job())
    assert mail.subject == "Go Bcc: evil@x.test 42"
    assert mail.text == "Custom start of cnpj.lookup"
    assert "started" in mail.html  # the built-in HTML: not overridden


def test_the_summary_counts_per_state_and_lists_the_failures() -> None:
    jobs = (
        SummaryJob(1, "cnpj.lookup", "k1", "completed", "", NOW),
        SummaryJob(2, "cnpj.lookup", "k2", "discarded", "CNPJ not found", NOW),
        SummaryJob(3, "cnpj.lookup", None, "completed", "", NOW),
    )
    summary = DailySummary(
        "acme", "alice@acme.test", date(2026, 3, 1), NOW - timedelta(1), NOW, jobs
    )
    assert summary.counts == {"completed": 2, "discarded": 1}
    mail = Renderer(BASE).summary_mail(summary)
    assert "3 jobs, 1 failed" in mail.subject
    assert "completed  2" in mail.text and "discarded  1" in mail.text
    assert "#2 cnpj.lookup (k2): CNPJ not found" in mail.text
    assert f"{BASE}/jobs/2" in mail.html and "CNPJ not found" in mail.html


def test_a_broken_operator_template_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "job_failed.txt").write_text("Job {{ job.id }\n")
    with pytest.raises(InvalidInput) as raised:
        Renderer(BASE, tmp_path)
    assert raised.value.field == "mail_templates_dir"
    assert str(tmp_path / "job_failed.txt") in raised.value.message


def test_an_operator_template_failing_at_render_falls_back_to_the_built_in(
    tmp_path: Path,
) -> None:
    (tmp_path / "job_started.txt").write_text("{{ job.nothing.deeper }}")
    mail = Renderer(BASE, tmp_path).job_mail(MailEvent.STARTED, a_job())
    assert "has started" in mail.text


def test_a_summary_shows_its_period_in_the_users_zone_and_counts_unlisted_jobs() -> None:
    jobs = (SummaryJob(1, "cnpj.lookup", None, "completed", "", NOW),)
    until = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
    summary = DailySummary(
        "acme",
        "alice@acme.test",
        date(2026, 3, 1),
        until - timedelta(1),
        until,
        jobs,
        (("completed", 40), ("discarded", 2)),
        "America/Sao_Paulo",
    )
    mail = Renderer(BASE).summary_mail(summary)
    assert "42 jobs, 2 failed" in mail.subject
    assert "to 2026-03-01 19:00:00 America/Sao_Paulo" in mail.text
    assert "2026-03-01 19:00:00 America/Sao_Paulo" in mail.html
    assert "... and 41 more" in mail.text and "... and 41 more" in mail.html
