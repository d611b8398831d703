"""When a schedule fires: cron expressions in a time zone, fixed intervals, one-offs.

Every time leaving this module is an aware UTC datetime; cron expressions are read
in the schedule's IANA zone. Daylight-saving policy (the one Debian cron has, which
cronsim implements for 5-field expressions):

- a wall-clock time that a spring-forward skips (02:30 on the day clocks jump from
  02:00 to 03:00) fires once, at the first instant after the gap (03:00);
- a wall-clock time that a fall-back repeats (01:30 on the day clocks go from 02:00
  back to 01:00) fires once, at its first occurrence;
- expressions with a wildcard minute or hour (``*/15 * * * *``) keep their rhythm in
  elapsed time, so they fire in both copies of a repeated hour.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from conveyor.domain.digits import is_digits
from conveyor.domain.errors import InvalidInput

MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 366 * 24 * 3600.0
MAX_PREVIEW = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST_MOMENT = datetime(3000, 1, 1, tzinfo=UTC)

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# (name, low, high, names allowed) for the fields of a 6-field expression, seconds first.
_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NUMBER = re.compile(r"\d+")
_INVALID = re.compile(r"[^0-9*?L#\-]")


class TimingKind(StrEnum):
    """How a schedule's fire times are defined."""

    CRON = "cron"
    INTERVAL = "interval"
    ONCE = "once"


@dataclass(frozen=True, slots=True)
class Timing:
    """A validated rule for fire times. Build it with :func:`cron`, :func:`every`
    or :func:`once`."""

    kind: TimingKind
    timezone: str = "UTC"
    cron: str = ""
    interval: float = 0.0
    """Seconds between fire times, counted from ``anchor``."""
    anchor: datetime = EPOCH
    """For intervals, the first fire time; for one-offs, the only one."""

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (UTC), or ``None`` if none is left."""
        after = after.astimezone(UTC)
        if self.kind is TimingKind.ONCE:
            return self.anchor if self.anchor > after else None
        if self.kind is TimingKind.INTERVAL:
            return self._next_interval(after)
        return next(self._cron_times(after), None)

    def upcoming(
        self, after: datetime, count: int, until: datetime | None = None
    ) -> list[datetime]:
        """Up to ``count`` fire times after ``after`` (and not after ``until``), in order."""
        found: list[datetime] = []
        current: datetime | None = after
        while len(found) < count and current is not None:
            current = self.next_after(current)
            if current is None or (until is not None and current > until):
                break
            found.append(current)
        return found

    def describe(self) -> str:
        """The rule in words, e.g. "At 19:00 every day (America/Sao_Paulo)"."""
        if self.kind is TimingKind.ONCE:
            local = self.anchor.astimezone(self.zone)
            return f"Once, at {local:%Y-%m-%d %H:%M:%S} ({self.timezone})"
        if self.kind is TimingKind.INTERVAL:
            return f"Every {_seconds_in_words(self.interval)}"
        text = CronSim(self.cron, datetime.now(UTC)).explain()
        return f"{text} ({self.timezone})"

    def _next_interval(self, after: datetime) -> datetime:
        if after < self.anchor:
            return self.anchor
        step = int(self.interval)
        elapsed = int((after - self.anchor).total_seconds())
        return self.anchor + timedelta(seconds=(elapsed // step + 1) * step)

    def _cron_times(self, after: datetime) -> Iterator[datetime]:
        expression, offsets = _daily_form(self.cron)
        start = (after - offsets[-1]).astimezone(self.zone)
        for local in CronSim(expression, start):
            base = local.astimezone(UTC)
            for offset in offsets:
                if base + offset > after:
                    yield base + offset


def _daily_form(expression: str) -> tuple[str, list[timedelta]]:
    """A 6-field expression with a fixed minute and hour, as its 5-field form plus the
    seconds it fires at in each of those minutes: cronsim applies the DST policy only
    to 5-field expressions, and a daily 02:30:15 deserves it as much as 02:30 does."""
    parts = expression.split()
    if len(parts) == 6 and parts[1][0] != "*" and parts[2][0] != "*":
        return " ".join(parts[1:]), _seconds_of(parts[0])
    return expression, [timedelta(0)]


def _seconds_of(field: str) -> list[timedelta]:
    """The seconds of a minute that a seconds field matches, in order."""
    found = []
    for moment in CronSim(f"{field} * * * * *", EPOCH - timedelta(seconds=1)):
        if moment.minute != 0:
            break
        found.append(timedelta(seconds=moment.second))
    return found


def _seconds_in_words(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds:g} seconds"


def check_timezone(name: object) -> str:
    """An IANA time zone name such as ``America/Sao_Paulo``."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidInput("timezone", "must be an IANA time zone name like Europe/Berlin")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = _closest_zone(name)
        raise InvalidInput(
            "timezone",
            f"{name!r} is not a known IANA time zone"
            + (f" (did you mean {hint}?)" if hint else ""),
        ) from None
    return name


def _closest_zone(name: str) -> str | None:
    lowered = name.lower().replace(" ", "_")
    matches = sorted(zone for zone in known_zones() if zone.lower().endswith(lowered))
    return matches[0] if matches else None


@functools.cache
def known_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows (read from the zone files once)."""
    return frozenset(available_timezones())


def check_cron(expression: object) -> str:
    """A cron expression: 5 fields, or 6 with seconds first, or an ``@daily``-style macro.
    Errors name the field and the problem, e.g. "minute field: 61 is out of range 0-59"."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput("cron", "must be a cron expression like '0 19 * * *'")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise InvalidInput("cron", f"unknown macro {text!r}; use one of {', '.join(MACROS)}")
        return MACROS[text.lower()]
    parts = text.split(" ")
    if len(parts) not in (5, 6):
        raise InvalidInput(
            "cron",
            f"has {len(parts)} fields; give 5 (minute hour day-of-month month day-of-week) "
            "or 6 (with seconds first)",
        )
    fields = _FIELDS[1:] if len(parts) == 5 else _FIELDS
    for (name, low, high), part in zip(fields, parts, strict=True):
        _check_field(name, low, high, part)
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise InvalidInput(
            "cron", _cron_problem(str(exc), dict(zip(_names(parts), parts, strict=True)))
        ) from None
    return text


def _names(parts: list[str]) -> list[str]:
    fields = _FIELDS[1:] if len(parts) == 5 else _FIELDS
    return [name for name, _, _ in fields]


def _cron_problem(message: str, fields: dict[str, str]) -> str:
    """cronsim's message ("Bad day-of-month") as "<field> field: <value> ..."."""
    name = message.removeprefix("Bad ")
    value = fields.get(name)
    if value is None:
        return message
    if name == "day-of-month" and is_digits(value.replace(",", "")):
        return f"{name} field: no month of the month field has day {value}"
    return f"{name} field: {value!r} is not valid"


def _check_field(name: str, low: int, high: int, field: str) -> None:
    """Name the first value of one field that is out of range or malformed."""
    for item in field.split(","):
        base, _, step = item.upper().partition("/")
        if step and (not is_digits(step) or int(step) == 0):
            raise InvalidInput("cron", f"{name} field: step {step!r} must be a whole number from 1")
        if name == "day-of-month" and base.endswith("W"):
            raise InvalidInput("cron", f"{name} field: 'W' (nearest weekday) is not supported")
        plain = _strip_names(name, base)
        if _INVALID.search(plain):
            raise InvalidInput("cron", f"{name} field: {item!r} is not valid")
        for value in _NUMBER.findall(plain):
            if not low <= int(value) <= high:
                raise InvalidInput("cron", f"{name} field: {value} is out of range {low}-{high}")


def _strip_names(name: str, text: str) -> str:
    """Remove month and day names and the ``L``/``#`` forms' extra numbers."""
    if name == "month":
        for month in _MONTHS:
            text = text.replace(month, "")
    if name == "day-of-week":
        for day in _DAYS:
            text = text.replace(day, "")
        text = text.split("#")[0]
    return text


def cron(expression: str, timezone: str = "UTC") -> Timing:
    """A cron rule read in ``timezone``."""
    return Timing(TimingKind.CRON, check_timezone(timezone), cron=check_cron(expression))


def every(seconds: float, start: datetime | None = None, timezone: str = "UTC") -> Timing:
    """Fire every ``seconds`` (whole seconds), counted from ``start``; without one, from
    the Unix epoch, so ``every(3600)`` fires on the hour and a restart keeps the rhythm."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise InvalidInput("interval", "must be a number of seconds")
    if (
        not math.isfinite(seconds)
        or seconds != int(seconds)
        or not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS
    ):
        raise InvalidInput(
            "interval",
            f"must be a whole number of seconds from {MIN_INTERVAL_SECONDS:g} "
            f"to {MAX_INTERVAL_SECONDS:.0f}",
        )
    return Timing(
        TimingKind.INTERVAL,
        check_timezone(timezone),
        interval=float(seconds),
        anchor=EPOCH if start is None else _aware("start_at", start),
    )


def once(at: datetime, timezone: str = "UTC") -> Timing:
    """Fire once, at ``at``."""
    return Timing(TimingKind.ONCE, check_timezone(timezone), anchor=_aware("at", at))


def _aware(field: str, value: object) -> datetime:
    """A zoned date-time as UTC, to the whole second: fire times stay exact in every
    store's time format, so (schedule, fire time) identifies a firing."""
    return check_moment(field, value).replace(microsecond=0)


def check_moment(field: str, value: object) -> datetime:
    """A zoned date-time from 1970 to 2999, as UTC: near the ends of ``datetime``'s
    range, moving to UTC or stepping a timing past it would overflow."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(field, "must be a date-time with a time zone")
    if not EPOCH <= value < LAST_MOMENT:
        raise InvalidInput(field, "must be a date-time from 1970 to 2999")
    return value.astimezone(UTC)


def parse_interval(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h`` or ``1d`` as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not match:
        raise InvalidInput("interval", f"{text!r} is not a duration like 30s, 15m, 2h or 1d")
    size = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
    return float(match[1]) * size


TIMING_CHOICES = ("cron", "interval", "at")


def timing_from(
    choices: Mapping[str, Any], timezone: str = "UTC", start: datetime | None = None
) -> Timing:
    """The timing given by exactly one of ``cron``, ``interval`` (seconds, or a duration
    like ``"15m"``) and ``at`` in ``choices``; an interval counts from ``start``."""
    given = [name for name in TIMING_CHOICES if choices.get(name) is not None]
    if not given:
        raise InvalidInput("cron", "give one of cron, interval or at")
    if len(given) > 1:
        raise InvalidInput(given[1], f"give only one of cron, interval and at ({given[0]} too)")
    value = choices[given[0]]
    if given[0] == "cron":
        return cron(value, timezone)
    if given[0] == "interval":
        return every(parse_interval(value) if isinstance(value, str) else value, start, timezone)
    return once(value, timezone)


def retimed(
    current: Timing,
    timezone: str | None = None,
    start: datetime | None = None,
    restart: bool = False,
) -> Timing | None:
    """``current`` read in another zone, or (``restart``) an interval counted from
    ``start`` instead; ``None`` when neither changes anything."""
    restart = restart and current.kind is TimingKind.INTERVAL
    if timezone is None and not restart:
        return None
    zone = check_timezone(timezone or current.timezone)
    if current.kind is TimingKind.CRON:
        return cron(current.cron, zone)
    if current.kind is TimingKind.INTERVAL:
        return every(current.interval, start if restart else current.anchor, zone)
    return once(current.anchor, zone)
