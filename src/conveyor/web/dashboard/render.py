"""Templates and the small helpers they use (times, states, sizes)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from conveyor import __version__
from conveyor.domain.lifecycle import JobState
from conveyor.web.dashboard.session import CSRF_FIELD, Viewer

HERE = Path(__file__).parent
STATES = [state.value for state in JobState]
STATIC_VERSION = __version__


def ago(moment: datetime | None, now: datetime) -> str:
    """``moment`` relative to ``now``, briefly: ``12s ago``, ``in 3m``."""
    if moment is None:
        return "—"
    seconds = (now - moment).total_seconds()
    text = _span(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def _span(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def stamp(moment: datetime | None) -> str:
    """An exact UTC time for a ``title`` or a table cell."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def pretty_json(value: Any) -> str:
    """A JSON value indented for reading."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def file_size(size: int) -> str:
    """Bytes in the largest whole unit."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"


def percent(fraction: float | None) -> int:
    """A progress fraction as a whole percentage, 0-100."""
    return max(0, min(100, round((fraction or 0.0) * 100)))


def build_templates() -> Jinja2Templates:
    """The dashboard's Jinja2 environment (autoescaped HTML)."""
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.filters.update(stamp=stamp, pretty_json=pretty_json, file_size=file_size, percent=percent)
    env.globals.update(STATES=STATES, CSRF_FIELD=CSRF_FIELD, STATIC_VERSION=STATIC_VERSION, ago=ago)
    return templates


TEMPLATES = build_templates()


def page(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a template with the viewer, the clock and the current section."""
    server = request.app.state.server
    response = TEMPLATES.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "now": server.now(), **context},
        status_code=status_code,
        headers=PAGE_HEADERS,
    )
    return response


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}
