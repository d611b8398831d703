"""The viewer's time zone: ``?tz=`` when a page takes it, else the ``conveyor_tz``
cookie the page script sets from the browser, else UTC."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request

from conveyor.domain.errors import InvalidInput
from conveyor.domain.timing import known_zones
from conveyor.web.schemas_schedules import zone_named

ZONE_COOKIE = "conveyor_tz"
LOCAL_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def viewer_zone(request: Request) -> tuple[str, bool]:
    """The zone to show times in and whether the URL asked for it (``?tz=``)."""
    asked = request.query_params.get("tz", "").strip()
    if asked:
        return zone_named("tz", asked), True
    cookie = request.cookies.get(ZONE_COOKIE) or "UTC"
    # A cookie from another browser's zone list is ignored, without searching for
    # the closest known name as a typed zone gets.
    return (cookie if cookie in known_zones() else "UTC"), False


def local_moment(field: str, text: str, zone: str) -> datetime:
    """A date or a date and time as a form's ``datetime-local`` sends it, read in
    ``zone``; ``InvalidInput`` naming ``field`` otherwise."""
    for layout in LOCAL_FORMATS:
        try:
            return datetime.strptime(text, layout).replace(tzinfo=ZoneInfo(zone))
        except ValueError:
            continue
    raise InvalidInput(field, "must be a date and time like 2026-12-01T09:30")
