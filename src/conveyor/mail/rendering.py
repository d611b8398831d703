"""Rendering mails from Jinja2 templates: a subject, a text body and an HTML body each.

The built-in templates live in ``conveyor/mail/templates``; a file of the same name
in the operator's ``mail_templates_dir`` wins over the built-in one. The operator's
templates are compiled when the Renderer is built (a syntax error stops the server
start, naming the file); one that fails while rendering a mail is logged and the
built-in template used instead. HTML templates are autoescaped; subjects are folded
onto one line (a template cannot add headers).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    TemplateError,
    select_autoescape,
)

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import Job
from conveyor.domain.mail import DailySummary, MailEvent, Rendered

log = logging.getLogger("conveyor.mail")

BUILT_IN = Path(__file__).parent / "templates"
SUBJECT_LIMIT = 250
PAYLOAD_LIMIT = 4000
STATE_OF: dict[MailEvent, str] = {
    MailEvent.STARTED: "running",
    MailEvent.SUCCEEDED: "completed",
    MailEvent.FAILED: "discarded",
}
"""The state each mail announces (the job may have moved on when the mail is made)."""


def _when(value: datetime | None, zone: str = "UTC") -> str:
    """A time in ``zone`` (``2026-06-01 19:00:00 America/Sao_Paulo``)."""
    if value is None:
        return ""
    try:
        local = value.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        local, zone = value.astimezone(UTC), "UTC"
    return f"{local:%Y-%m-%d %H:%M:%S} {zone}"


def _environment(loader: BaseLoader) -> Environment:
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        keep_trailing_newline=True,
    )
    env.filters["when"] = _when
    return env


class Renderer:
    """Renders the mails from the built-in templates and the operator's overrides."""

    def __init__(self, base_url: str, templates_dir: Path | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        built_in = FileSystemLoader(str(BUILT_IN))
        self.built_in = _environment(built_in)
        if templates_dir is None:
            self.env = self.built_in
        else:
            self.env = _environment(ChoiceLoader([FileSystemLoader(str(templates_dir)), built_in]))
            _compile_all(self.env, templates_dir)

    def render(self, name: str, **context: Any) -> Rendered:
        """``name``'s subject, text and HTML, rendered with ``context``; by the built-in
        templates if the operator's fail."""
        context["base_url"] = self.base_url
        try:
            return _render(self.env, name, context)
        except Exception:
            if self.env is self.built_in:
                raise
            log.exception("mail template %r failed; using the built-in one", name)
            return _render(self.built_in, name, context)

    def job_mail(self, event: MailEvent, job: Job) -> Rendered:
        """The mail of a job's start, success or failure."""
        payload = json.dumps(job.payload, indent=2, sort_keys=True, ensure_ascii=False)
        if len(payload) > PAYLOAD_LIMIT:
            payload = payload[:PAYLOAD_LIMIT] + "\n..."
        return self.render(
            f"job_{event.value}",
            job=job,
            event=event.value,
            state=STATE_OF[event],
            payload=payload,
            link=f"{self.base_url}/jobs/{job.id}",
        )

    def summary_mail(self, summary: DailySummary) -> Rendered:
        """A user's daily summary."""
        return self.render("daily_summary", summary=summary)

    def test_mail(self) -> Rendered:
        """The mail ``conveyor mail test`` sends."""
        return self.render("test")


def _render(env: Environment, name: str, context: dict[str, Any]) -> Rendered:
    subject = env.get_template(f"{name}.subject.txt").render(context)
    return Rendered(
        subject=" ".join(subject.split())[:SUBJECT_LIMIT],
        text=env.get_template(f"{name}.txt").render(context),
        html=env.get_template(f"{name}.html").render(context),
    )


def _compile_all(env: Environment, templates_dir: Path) -> None:
    """Compile each of the operator's templates; ``InvalidInput`` names a broken one."""
    for path in sorted(templates_dir.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(templates_dir).as_posix()
        try:
            env.get_template(name)
        except (TemplateError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            where = f"{path}:{line}" if line else str(path)
            reason = getattr(exc, "message", None) or str(exc)
            raise InvalidInput("mail_templates_dir", f"{where}: {reason}") from None
