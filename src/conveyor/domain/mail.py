"""Email notifications: mail rules (the email Subscriptions), the mail outbox, and the
pure rules about them.

Which job events a rule wants (:func:`rule_matches`), to whom (:func:`recipients`),
each mail's dedupe key, when a failed send is tried again (:func:`next_attempt_at`)
and when a user's daily summary is due (:func:`summary_due`, DST-correct). Standard
library only; the mailer loop does the I/O.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.domain.accounts import normalize_email
from conveyor.domain.digits import is_digits
from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import Job, check_name

OWNER = "owner"
"""In a rule's recipients: the job's creator (``Job.created_by``)."""
MAX_RECIPIENTS = 20
DEFAULT_SUMMARY_AT = time(19, 0)
SUMMARY_PERIOD = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
RETRY_WINDOW = timedelta(hours=24)
"""A mail is retried until this long after it was queued, then it has failed."""
JITTER = 0.2
_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_SCHEDULE_MESSAGE = re.compile(r"^schedule:(\d+):")


class MailEvent(StrEnum):
    """The job events a rule may mail on."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


EVENT_TYPES: dict[str, MailEvent] = {
    "job.started": MailEvent.STARTED,
    "job.succeeded": MailEvent.SUCCEEDED,
    "job.discarded": MailEvent.FAILED,
}
"""The event each mail event is read from. ``failed`` is a discarded job (out of
attempts, or failed for good); a cancelled job mails nothing."""


class ScopeKind(StrEnum):
    """What a rule's scope names."""

    TASK = "task"
    SCHEDULE = "schedule"
    JOB = "job"


class MailState(StrEnum):
    """Where a queued mail stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a tenant asks for: on which events of which jobs to mail whom."""

    scope_kind: ScopeKind
    scope_value: str
    on: tuple[MailEvent, ...]
    to: tuple[str, ...]
    """Addresses, and/or :data:`OWNER`."""


@dataclass(frozen=True, slots=True)
class MailRule:
    """A stored rule."""

    id: int
    tenant_id: str
    spec: RuleSpec
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Rendered:
    """A mail's subject and bodies."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class NewMail:
    """A mail to queue; its ``dedupe_key`` makes it queued once."""

    tenant_id: str
    dedupe_key: str
    kind: str
    job_id: int | None
    recipient: str
    content: Rendered


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """A queued mail and its latest attempt."""

    id: int
    tenant_id: str
    dedupe_key: str
    kind: str
    job_id: int | None
    recipient: str
    content: Rendered
    state: MailState
    attempts: int
    next_attempt_at: datetime | None
    window_start: datetime
    last_error: str
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MailPreferences:
    """When a user gets the daily summary."""

    time_zone: str
    summary_at: time = DEFAULT_SUMMARY_AT
    summary_enabled: bool = True


@dataclass(frozen=True, slots=True)
class SummaryRecipient:
    """A member of a tenant with their summary preferences."""

    tenant_id: str
    user_id: str
    email: str
    preferences: MailPreferences


@dataclass(frozen=True, slots=True)
class SummaryJob:
    """One job of a summary."""

    id: int
    task: str
    key: str | None
    state: str
    error: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DailySummary:
    """One user's jobs in one tenant over the day before ``until``: the count per state
    of all of them, and a list of at most some (``more`` are left out)."""

    tenant_id: str
    email: str
    local_date: date
    since: datetime
    until: datetime
    jobs: tuple[SummaryJob, ...]
    totals: tuple[tuple[str, int], ...] = ()
    """Jobs per state over the whole period; empty: counted from ``jobs``."""
    time_zone: str = "UTC"
    """The user's zone, to show ``since`` and ``until`` in."""

    @property
    def counts(self) -> dict[str, int]:
        """Jobs per state, most first."""
        found = Counter(dict(self.totals)) if self.totals else Counter(j.state for j in self.jobs)
        return dict(found.most_common())

    @property
    def total(self) -> int:
        """How many jobs, listed or not."""
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        """How many jobs failed (discarded), listed or not."""
        return self.counts.get("discarded", 0)

    @property
    def more(self) -> int:
        """How many jobs the list leaves out."""
        return max(self.total - len(self.jobs), 0)

    @property
    def failures(self) -> tuple[SummaryJob, ...]:
        """The jobs that failed (discarded)."""
        return tuple(job for job in self.jobs if job.state == "discarded")

    def by_state(self) -> dict[str, list[SummaryJob]]:
        """The jobs grouped by state, in the order of :attr:`counts`."""
        groups: dict[str, list[SummaryJob]] = {state: [] for state in self.counts}
        for job in self.jobs:
            groups.setdefault(job.state, []).append(job)
        return {state: jobs for state, jobs in groups.items() if jobs}


def rule_spec(scope: str, on: Sequence[str], to: Sequence[str]) -> RuleSpec:
    """A validated rule from ``scope`` (``task:NAME``, ``schedule:ID`` or ``job:ID``),
    the events and the recipients; ``InvalidInput`` names the bad field."""
    kind_name, _, value = scope.partition(":") if isinstance(scope, str) else ("", "", "")
    try:
        kind = ScopeKind(kind_name)
    except ValueError:
        raise InvalidInput("scope", "must be task:NAME, schedule:ID or job:ID") from None
    if kind is ScopeKind.TASK:
        value = check_name("scope", value)
    elif not is_digits(value) or not 0 < int(value) < 2**62:
        raise InvalidInput("scope", f"{kind.value}: needs a positive id")
    return RuleSpec(kind, str(value), check_events(on), check_recipients(to))


def check_events(on: Sequence[str]) -> tuple[MailEvent, ...]:
    """A non-empty subset of ``started``, ``succeeded``, ``failed``."""
    known = ", ".join(e.value for e in MailEvent)
    if isinstance(on, str) or not on:
        raise InvalidInput("on", f"must list at least one of {known}")
    try:
        return tuple(dict.fromkeys(MailEvent(e) for e in on))
    except ValueError:
        raise InvalidInput("on", f"may hold only {known}") from None


def check_recipients(to: Sequence[str]) -> tuple[str, ...]:
    """Addresses and/or ``owner``, 1 to :data:`MAX_RECIPIENTS`, lowercased, no repeats."""
    if isinstance(to, str) or not to or len(to) > MAX_RECIPIENTS:
        raise InvalidInput("to", f"must list 1 to {MAX_RECIPIENTS} addresses or 'owner'")
    cleaned = []
    for value in to:
        if isinstance(value, str) and value.strip().lower() == OWNER:
            cleaned.append(OWNER)
            continue
        try:
            cleaned.append(normalize_email(value))
        except InvalidInput:
            raise InvalidInput("to", f"{value!r} is not an email address or 'owner'") from None
    return tuple(dict.fromkeys(cleaned))


def schedule_id_of(job: Job) -> int | None:
    """The schedule that fired ``job``, from its idempotency key."""
    found = _SCHEDULE_MESSAGE.match(job.message_id or "")
    return int(found.group(1)) if found else None


def rule_matches(spec: RuleSpec, job: Job, event: MailEvent) -> bool:
    """Whether a rule mails on ``event`` of ``job``."""
    if event not in spec.on:
        return False
    if spec.scope_kind is ScopeKind.TASK:
        return job.task == spec.scope_value
    if spec.scope_kind is ScopeKind.JOB:
        return str(job.id) == spec.scope_value
    return str(schedule_id_of(job)) == spec.scope_value


def may_match(spec: RuleSpec, event: MailEvent, job_id: int, task: object) -> bool:
    """Whether a rule could mail on an event of job ``job_id`` running ``task`` (the
    event's ``task``, ``None`` if it names none), before the job is read."""
    if event not in spec.on:
        return False
    if spec.scope_kind is ScopeKind.TASK:
        return task is None or task == spec.scope_value
    if spec.scope_kind is ScopeKind.JOB:
        return spec.scope_value == str(job_id)
    return True


def recipients(spec: RuleSpec, job: Job, members: Container[str]) -> list[str]:
    """A rule's addresses for ``job``. ``owner`` is its creator, if it has one and that
    address is in ``members`` (the tenant's current members): who left gets nothing."""
    found = []
    for address in spec.to:
        if address == OWNER:
            owner = (job.created_by or "").lower()
            if owner and owner in members:
                found.append(owner)
        else:
            found.append(address)
    return list(dict.fromkeys(found))


def job_dedupe_key(job_id: int, event: MailEvent, address: str) -> str:
    """A job mail's key: one ``started`` mail per job and address, whatever the retries."""
    return f"job:{job_id}:{event.value}:{address}"


def summary_dedupe_key(user_id: str, tenant_id: str, local_date: date) -> str:
    """A summary's key: one per user, tenant and local day."""
    return f"summary:{user_id}:{tenant_id}:{local_date.isoformat()}"


def next_attempt_at(
    attempts: int, window_start: datetime, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When to try a mail again after its ``attempts``-th failure (30 s, doubling up to
    an hour, with jitter), or ``None``: the day of retries is over."""
    if now - window_start >= RETRY_WINDOW:
        return None
    base = min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 20)), LONGEST_RETRY)
    spread = (rng or random.Random()).uniform(-JITTER, JITTER)  # noqa: S311 - not security
    return now + base * (1 + spread)


def check_time_zone(value: str) -> str:
    """An IANA time zone name (``Europe/Berlin``)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise InvalidInput("time_zone", f"{value!r} is not an IANA time zone") from None
    return value


def parse_summary_at(value: str) -> time:
    """A local time of day ``HH:MM`` (24-hour clock)."""
    found = _HH_MM.match(value) if isinstance(value, str) else None
    if not found:
        raise InvalidInput("summary_at", "must be a time HH:MM (00:00 to 23:59)")
    return time(int(found.group(1)), int(found.group(2)))


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether the wall-clock time ``wall`` happens in ``zone`` (not in a DST gap)."""
    back = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == wall


def summary_due(local_date: date, at: time, zone: ZoneInfo) -> datetime:
    """When the summary of ``local_date`` is due, in UTC: ``at`` on that day; a time
    skipped by a DST change comes at the first minute after the gap, a time that
    happens twice at its first occurrence."""
    wall = datetime.combine(local_date, at)
    while not _exists(wall, zone):
        wall = (wall + timedelta(minutes=1)).replace(second=0)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def due_summary(now: datetime, preferences: MailPreferences) -> tuple[date, datetime] | None:
    """The local date and due time of the summary to send at ``now``: today's (in the
    user's zone) once its time has come; ``None`` before it, or when turned off. A
    summary missed on an earlier day is not sent."""
    if not preferences.summary_enabled:
        return None
    zone = ZoneInfo(preferences.time_zone)
    today = now.astimezone(zone).date()
    due = summary_due(today, preferences.summary_at, zone)
    return (today, due) if now >= due else None
