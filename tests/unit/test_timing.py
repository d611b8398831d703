"""Fire times: cron in a time zone (with the documented DST policy), intervals, one-offs,
and the messages that reject bad input. Fixed instants only; no clock, no sleeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain.errors import InvalidInput
from conveyor.domain.timing import (
    EPOCH,
    MACROS,
    Timing,
    TimingKind,
    check_cron,
    check_timezone,
    cron,
    every,
    once,
    parse_interval,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def wall(when: datetime, zone: str) -> str:
    """An instant as the schedule's zone shows it, e.g. "2026-03-29T03:00:00+02:00"."""
    return when.astimezone(ZoneInfo(zone)).isoformat()


def assert_strictly_increasing(times: list[datetime]) -> None:
    assert all(a < b for a, b in pairwise(times)), times
    assert len(set(times)) == len(times)


# -- DST: fixed daily times ---------------------------------------------------------------

# (zone, expression, after, expected fire times in UTC): the day before the change,
# the day of the change, the day after.
DST_CASES = [
    pytest.param(
        "Europe/Berlin",
        "30 2 * * *",
        utc(2026, 3, 27, 12),
        [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
        id="berlin-spring-forward-fires-at-03:00",
    ),
    pytest.param(
        "Europe/Berlin",
        "30 2 * * *",
        utc(2026, 10, 23, 12),
        [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        id="berlin-fall-back-fires-at-first-02:30",
    ),
    pytest.param(
        "America/New_York",
        "30 2 * * *",
        utc(2026, 3, 6, 12),
        [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
        id="new-york-spring-forward-fires-at-03:00",
    ),
    pytest.param(
        "America/New_York",
        "30 1 * * *",
        utc(2026, 10, 30, 12),
        [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        id="new-york-fall-back-fires-at-first-01:30",
    ),
    pytest.param(
        "America/Sao_Paulo",
        "30 0 * * *",
        utc(2018, 11, 2, 12),
        [utc(2018, 11, 3, 3, 30), utc(2018, 11, 4, 3, 0), utc(2018, 11, 5, 2, 30)],
        id="sao-paulo-2018-midnight-spring-forward-fires-at-01:00",
    ),
    pytest.param(
        "America/Sao_Paulo",
        "0 0 * * *",
        utc(2018, 11, 2, 12),
        [utc(2018, 11, 3, 3, 0), utc(2018, 11, 4, 3, 0), utc(2018, 11, 5, 2, 0)],
        id="sao-paulo-2018-skipped-midnight-fires-at-01:00",
    ),
    pytest.param(
        "America/Sao_Paulo",
        "30 23 * * *",
        utc(2019, 2, 15, 12),
        # The evening of Feb 16 has 23:00-23:59 twice (midnight went back to 23:00).
        [utc(2019, 2, 16, 1, 30), utc(2019, 2, 17, 1, 30), utc(2019, 2, 18, 2, 30)],
        id="sao-paulo-2019-fall-back-fires-at-first-23:30",
    ),
    pytest.param(
        "America/Sao_Paulo",
        "30 0 * * *",
        utc(2019, 11, 2, 0),
        # Brazil abolished DST in 2019: the old first Sunday of November stays at -03.
        [utc(2019, 11, 2, 3, 30), utc(2019, 11, 3, 3, 30), utc(2019, 11, 4, 3, 30)],
        id="sao-paulo-2019-no-more-dst",
    ),
    pytest.param(
        "Australia/Adelaide",
        "30 2 * * *",
        utc(2026, 4, 3, 0),
        # 03:00 +10:30 goes back to 02:00 +09:30 on Apr 5.
        [utc(2026, 4, 3, 16, 0), utc(2026, 4, 4, 16, 0), utc(2026, 4, 5, 17, 0)],
        id="adelaide-fall-back-fires-at-first-02:30",
    ),
    pytest.param(
        "Australia/Adelaide",
        "30 2 * * *",
        utc(2026, 10, 2, 12),
        # 02:00 +09:30 jumps to 03:00 +10:30 on Oct 4.
        [utc(2026, 10, 2, 17, 0), utc(2026, 10, 3, 16, 30), utc(2026, 10, 4, 16, 0)],
        id="adelaide-spring-forward-fires-at-03:00",
    ),
    pytest.param(
        "Asia/Kolkata",
        "30 2 * * *",
        utc(2026, 3, 27, 12),
        [utc(2026, 3, 27, 21, 0), utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 21, 0)],
        id="kolkata-has-no-dst",
    ),
    pytest.param(
        "Australia/Lord_Howe",
        "45 1 * * *",
        utc(2026, 4, 3, 0),
        # A 30-minute fall-back: 02:00 +11:00 goes back to 01:30 +10:30 on Apr 5.
        [utc(2026, 4, 3, 14, 45), utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15)],
        id="lord-howe-half-hour-fall-back-fires-at-first-01:45",
    ),
    pytest.param(
        "Australia/Lord_Howe",
        "15 2 * * *",
        utc(2026, 10, 2, 12),
        # A 30-minute spring-forward: 02:00 +10:30 jumps to 02:30 +11:00 on Oct 4.
        [utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)],
        id="lord-howe-half-hour-spring-forward-fires-at-02:30",
    ),
    pytest.param(
        "Europe/Berlin",
        "15 30 2 * * *",
        utc(2026, 3, 27, 12),
        [utc(2026, 3, 28, 1, 30, 15), utc(2026, 3, 29, 1, 0, 15), utc(2026, 3, 30, 0, 30, 15)],
        id="six-field-spring-forward-keeps-its-seconds-after-the-gap",
    ),
    pytest.param(
        "Europe/Berlin",
        "15 30 2 * * *",
        utc(2026, 10, 23, 12),
        [utc(2026, 10, 24, 0, 30, 15), utc(2026, 10, 25, 0, 30, 15), utc(2026, 10, 26, 1, 30, 15)],
        id="six-field-fall-back-fires-at-first-occurrence",
    ),
]


@pytest.mark.parametrize(("zone", "expression", "after", "expected"), DST_CASES)
def test_a_daily_cron_fires_once_a_day_across_dst_changes(
    zone: str, expression: str, after: datetime, expected: list[datetime]
) -> None:
    times = cron(expression, zone).upcoming(after, len(expected))
    assert times == expected
    assert all(t.tzinfo is UTC for t in times)
    assert_strictly_increasing(times)
    local_dates = [t.astimezone(ZoneInfo(zone)).date() for t in times]
    assert len(set(local_dates)) == len(local_dates)


@pytest.mark.parametrize(("zone", "expression", "after", "expected"), DST_CASES)
def test_walking_one_fire_time_at_a_time_never_repeats_across_dst_changes(
    zone: str, expression: str, after: datetime, expected: list[datetime]
) -> None:
    timing = cron(expression, zone)
    for previous, following in pairwise(expected):
        assert timing.next_after(previous) == following
        # From anywhere between two fire times the next one is the same.
        assert timing.next_after(previous + (following - previous) / 2) == following
        assert timing.next_after(following - timedelta(microseconds=1)) == following


def test_the_spring_forward_fire_time_shows_as_03_00_local() -> None:
    fired = cron("30 2 * * *", "Europe/Berlin").next_after(utc(2026, 3, 28, 12))
    assert fired is not None
    assert wall(fired, "Europe/Berlin") == "2026-03-29T03:00:00+02:00"


def test_the_fall_back_fire_time_is_the_summer_time_copy() -> None:
    fired = cron("30 1 * * *", "America/New_York").next_after(utc(2026, 10, 31, 12))
    assert fired is not None
    assert wall(fired, "America/New_York") == "2026-11-01T01:30:00-04:00"


def test_starting_inside_the_repeated_hour_after_the_first_copy_waits_for_tomorrow() -> None:
    # 06:10 UTC is 01:10 EST, in the second copy of 01:00-02:00: today's 01:30 (EDT)
    # already fired at 05:30 UTC.
    timing = cron("30 1 * * *", "America/New_York")
    assert timing.next_after(utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 30)
    # 05:10 UTC is 01:10 EDT, before the first copy.
    assert timing.next_after(utc(2026, 11, 1, 5, 10)) == utc(2026, 11, 1, 5, 30)


@pytest.mark.parametrize("year", [2020, 2023, 2026])
def test_sao_paulo_has_no_shift_after_brazil_abolished_dst(year: int) -> None:
    times = cron("0 12 * * *", "America/Sao_Paulo").upcoming(utc(year, 1, 1), 365)
    assert {t.time() for t in times} == {time(15, 0)}
    assert times[0] == utc(year, 1, 1, 15)


def test_a_skipped_day_fires_once_at_the_first_instant_after_it() -> None:
    # Samoa skipped 2011-12-30 entirely (midnight of the 29th became midnight of the
    # 31st): the 30th's 02:30 fires at the first instant after the gap.
    times = cron("30 2 * * *", "Pacific/Apia").upcoming(utc(2011, 12, 28), 4)
    assert [wall(t, "Pacific/Apia") for t in times] == [
        "2011-12-28T02:30:00-10:00",
        "2011-12-29T02:30:00-10:00",
        "2011-12-31T00:00:00+14:00",
        "2011-12-31T02:30:00+14:00",
    ]
    assert_strictly_increasing(times)


# -- DST: wildcard expressions keep elapsed-time rhythm -------------------------------------


def test_a_wildcard_hour_expression_fires_in_both_copies_of_the_repeated_hour() -> None:
    times = cron("*/30 * * * *", "Europe/Berlin").upcoming(utc(2026, 10, 24, 23, 50), 6)
    assert times == [utc(2026, 10, 25, 0, 0) + timedelta(minutes=30 * n) for n in range(6)]
    assert [wall(t, "Europe/Berlin") for t in times] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]


def test_a_wildcard_expression_in_new_york_fires_in_both_copies_of_01_00() -> None:
    times = cron("*/30 * * * *", "America/New_York").upcoming(utc(2026, 11, 1, 4, 50), 4)
    assert times == [utc(2026, 11, 1, 5, 0) + timedelta(minutes=30 * n) for n in range(4)]


def test_a_fixed_minute_every_hour_fires_in_both_copies_of_the_repeated_hour() -> None:
    times = cron("30 * * * *", "Europe/Berlin").upcoming(utc(2026, 10, 24, 23, 50), 3)
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 30)]


def test_a_six_field_wildcard_expression_also_keeps_elapsed_rhythm() -> None:
    times = cron("0 */30 * * * *", "Europe/Berlin").upcoming(utc(2026, 10, 24, 23, 50), 4)
    assert times == [utc(2026, 10, 25, 0, 0) + timedelta(minutes=30 * n) for n in range(4)]


def test_a_wildcard_minute_in_a_fixed_hour_fires_in_both_copies() -> None:
    times = cron("*/20 2 * * *", "Europe/Berlin").upcoming(utc(2026, 10, 24, 23, 50), 7)
    assert times == [
        *(utc(2026, 10, 25, 0, 0) + timedelta(minutes=20 * n) for n in range(6)),
        utc(2026, 10, 26, 1, 0),
    ]


def test_a_wildcard_expression_through_a_spring_forward_loses_no_elapsed_time() -> None:
    times = cron("*/30 * * * *", "Europe/Berlin").upcoming(utc(2026, 3, 29, 0, 20), 4)
    assert times == [utc(2026, 3, 29, 0, 30) + timedelta(minutes=30 * n) for n in range(4)]
    assert wall(times[1], "Europe/Berlin") == "2026-03-29T03:00:00+02:00"


# The policy holds when the seconds field of a fixed daily time is a list or a step too
# (02:30:00 and 02:30:30 are two wall-clock times that the change skips or repeats).


def test_a_six_field_seconds_list_at_a_skipped_time_still_fires_that_day() -> None:
    times = cron("0,30 30 2 * * *", "Europe/Berlin").upcoming(utc(2026, 3, 28, 12), 2)
    assert times[0].astimezone(ZoneInfo("Europe/Berlin")).date() == date(2026, 3, 29)


def test_a_six_field_seconds_list_at_a_repeated_time_fires_only_in_the_first_copy() -> None:
    times = cron("0,30 30 2 * * *", "Europe/Berlin").upcoming(utc(2026, 10, 24, 12), 3)
    assert times[:2] == [utc(2026, 10, 25, 0, 30, 0), utc(2026, 10, 25, 0, 30, 30)]
    assert times[2] == utc(2026, 10, 26, 1, 30, 0)


# -- DST: property ------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "Europe/Dublin",
    "America/New_York",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/Havana",
    "America/Nuuk",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Asia/Beirut",
    "Africa/Cairo",
    "Africa/Casablanca",
]

# Days with a DST change in some of ZONES, so starts near them are drawn often.
CHANGE_DAYS = [
    utc(2018, 11, 4),
    utc(2019, 2, 17),
    utc(2021, 3, 14),
    utc(2022, 9, 22),
    utc(2023, 3, 25),
    utc(2023, 10, 28),
    utc(2024, 4, 7),
    utc(2024, 9, 29),
    utc(2026, 3, 8),
    utc(2026, 3, 29),
    utc(2026, 4, 5),
    utc(2026, 10, 4),
    utc(2026, 10, 25),
    utc(2026, 11, 1),
]

starts = st.one_of(
    st.datetimes(
        min_value=datetime(1995, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
    ),
    st.builds(
        lambda day, seconds: day + timedelta(seconds=seconds),
        st.sampled_from(CHANGE_DAYS),
        st.integers(-3 * 86400, 2 * 86400),
    ),
)


def _first_instant_at_or_after(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time first happens at, or, for a time a gap skips, the
    first instant after the gap (the change itself). Worked out from zoneinfo alone."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first  # fold=0 is the earlier of two occurrences
    # In a gap the two readings of the wall time bracket the change: the one with the
    # later offset comes before it, the one with the earlier offset at or after it.
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after_offset = first.astimezone(zone).utcoffset()
    low, high = before, first
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def _expected_daily(
    hour: int, minute: int, zone_name: str, after: datetime, count: int
) -> list[datetime]:
    zone = ZoneInfo(zone_name)
    day = after.astimezone(zone).date() - timedelta(days=2)
    found: list[datetime] = []
    while len(found) < count:
        fire = _first_instant_at_or_after(datetime.combine(day, time(hour, minute)), zone)
        if fire > after:
            found.append(fire)
        day += timedelta(days=1)
    return found


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    after=starts,
)
def test_a_daily_cron_fires_once_per_local_day_in_increasing_order(
    zone: str, hour: int, minute: int, after: datetime
) -> None:
    times = cron(f"{minute} {hour} * * *", zone).upcoming(after, 8)
    assert len(times) == 8
    assert times[0] > after
    assert_strictly_increasing(times)
    local_dates = [t.astimezone(ZoneInfo(zone)).date() for t in times]
    assert len(set(local_dates)) == len(local_dates)
    assert times == _expected_daily(hour, minute, zone, after, 8)


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    second=st.integers(0, 59),
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    after=starts,
)
def test_a_daily_six_field_cron_follows_the_same_policy_plus_its_seconds(
    zone: str, second: int, minute: int, hour: int, after: datetime
) -> None:
    times = cron(f"{second} {minute} {hour} * * *", zone).upcoming(after, 5)
    assert times[0] > after
    assert_strictly_increasing(times)
    without_seconds = cron(f"{minute} {hour} * * *", zone).upcoming(
        after - timedelta(seconds=second), 5
    )
    assert times == [t + timedelta(seconds=second) for t in without_seconds]


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    expression=st.sampled_from(["*/15 * * * *", "0 * * * *", "45 */2 * * *", "*/7 1-3 * * *"]),
    after=starts,
)
def test_any_cron_returns_strictly_increasing_times_after_the_start(
    zone: str, expression: str, after: datetime
) -> None:
    times = cron(expression, zone).upcoming(after, 12)
    assert times[0] > after
    assert_strictly_increasing(times)


# -- Cron validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month field: 32 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("0 0 * * 8#1", "day-of-week field: 8 is out of range 0-7"),
        ("60 0 0 * * *", "second field: 60 is out of range 0-59"),
        ("*/0 * * * *", "minute field: step '0' must be a whole number from 1"),
        ("0 */x * * *", "hour field: step 'X' must be a whole number from 1"),
        ("0 0 15W * *", "day-of-month field: 'W' (nearest weekday) is not supported"),
        ("0 0 LW * *", "day-of-month field: 'W' (nearest weekday) is not supported"),
        ("0 0 30 2 *", "day-of-month field: no month of the month field has day 30"),
        ("0 0 30 FEB *", "day-of-month field: no month of the month field has day 30"),
        ("0 0 31 2,4 *", "day-of-month field: no month of the month field has day 31"),
        ("a * * * *", "minute field: 'a' is not valid"),
        ("5-1 * * * *", "minute field: '5-1' is not valid"),
        ("1-2-3 * * * *", "minute field: '1-2-3' is not valid"),
        (",, * * * *", "minute field: ',,' is not valid"),
        ("0 0 ? * *", "day-of-month field: '?' is not valid"),
        ("0 0 * JANX *", "month field: 'JANX' is not valid"),
        ("0 0 * * MONX", "day-of-week field: 'MONX' is not valid"),
        ("0 0 * * 1#6", "day-of-week field: '1#6' is not valid"),
        ("0 0 * * L", "day-of-week field: 'L' is not valid"),
        (
            "* * * *",
            "has 4 fields; give 5 (minute hour day-of-month month day-of-week) "
            "or 6 (with seconds first)",
        ),
        (
            "* * * * * * *",
            "has 7 fields; give 5 (minute hour day-of-month month day-of-week) "
            "or 6 (with seconds first)",
        ),
        (
            "@often",
            "unknown macro '@often'; use one of "
            "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        ),
        (
            "@reboot",
            "unknown macro '@reboot'; use one of "
            "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        ),
        ("", "must be a cron expression like '0 19 * * *'"),
        ("   ", "must be a cron expression like '0 19 * * *'"),
        (None, "must be a cron expression like '0 19 * * *'"),
        (19, "must be a cron expression like '0 19 * * *'"),
    ],
)
def test_a_bad_cron_expression_is_refused_with_the_field_and_problem(
    expression: object, problem: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_cron(expression)
    assert caught.value.field == "cron"
    assert caught.value.problem == problem
    assert str(caught.value) == f"cron: {problem}"


def test_cron_refuses_a_bad_expression_before_building_a_timing() -> None:
    with pytest.raises(InvalidInput, match=r"^cron: minute field: 61 is out of range 0-59$"):
        cron("61 * * * *", "Europe/Berlin")


@pytest.mark.parametrize(
    ("macro", "expression"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("  @hourly ", "0 * * * *"),
    ],
)
def test_a_macro_becomes_its_five_field_expression(macro: str, expression: str) -> None:
    assert check_cron(macro) == expression
    assert cron(macro).cron == expression


def test_every_macro_is_documented_in_the_table() -> None:
    assert set(MACROS) == {
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    }


@pytest.mark.parametrize(
    ("given_text", "kept"),
    [
        ("0  19   * * *", "0 19 * * *"),
        ("0\t19 * * *", "0 19 * * *"),
        ("0 0 L * *", "0 0 L * *"),
        ("0 0 * * 5L", "0 0 * * 5L"),
        ("0 0 * * MON#2", "0 0 * * MON#2"),
        ("0 0 1 jan *", "0 0 1 jan *"),
        ("0 0 * * mon-fri", "0 0 * * mon-fri"),
        ("0 0 * * 7", "0 0 * * 7"),
        ("0 0 29 2 *", "0 0 29 2 *"),
        ("0 0 30 2 1", "0 0 30 2 1"),
        ("15 30 2 * * *", "15 30 2 * * *"),
        ("*/10 * * * * *", "*/10 * * * * *"),
    ],
)
def test_a_valid_cron_expression_is_kept_with_its_spaces_normalised(
    given_text: str, kept: str
) -> None:
    assert check_cron(given_text) == kept


def test_seven_in_the_day_of_week_field_means_sunday() -> None:
    # 2026-06-01 is a Monday.
    assert cron("0 0 * * 7").next_after(utc(2026, 6, 1)) == utc(2026, 6, 7)
    assert cron("0 0 * * 0").next_after(utc(2026, 6, 1)) == utc(2026, 6, 7)


def test_february_30_with_a_weekday_means_either_one() -> None:
    # Both day fields restricted: Debian cron ORs them, so this is "Mondays in February".
    assert cron("0 0 30 2 1").next_after(utc(2026, 1, 1)) == utc(2026, 2, 2)


def test_the_last_day_of_the_month() -> None:
    assert cron("0 0 L * *").upcoming(utc(2028, 1, 31, 1), 2) == [
        utc(2028, 2, 29),
        utc(2028, 3, 31),
    ]


# -- Time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("berlin", "'berlin' is not a known IANA time zone (did you mean Europe/Berlin?)"),
        ("Berlin", "'Berlin' is not a known IANA time zone (did you mean Europe/Berlin?)"),
        (
            "sao paulo",
            "'sao paulo' is not a known IANA time zone (did you mean America/Sao_Paulo?)",
        ),
        ("Kolkata", "'Kolkata' is not a known IANA time zone (did you mean Asia/Kolkata?)"),
        ("Europe/Berln", "'Europe/Berln' is not a known IANA time zone"),
        ("../etc/passwd", "'../etc/passwd' is not a known IANA time zone"),
        ("/etc/passwd", "'/etc/passwd' is not a known IANA time zone"),
        ("", "must be an IANA time zone name like Europe/Berlin"),
        ("Europe/\x00Berlin", "must be an IANA time zone name like Europe/Berlin"),
        (None, "must be an IANA time zone name like Europe/Berlin"),
        (3, "must be an IANA time zone name like Europe/Berlin"),
    ],
)
def test_an_unknown_time_zone_is_refused_with_a_suggestion(name: object, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_timezone(name)
    assert caught.value.field == "timezone"
    assert caught.value.problem == problem


@pytest.mark.parametrize("name", ["America", "Europe", "Australia"])
def test_a_time_zone_folder_is_refused_as_invalid_input(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_timezone(name)
    assert caught.value.field == "timezone"
    assert caught.value.problem == f"{name!r} is not a known IANA time zone"


def test_a_cron_in_an_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidInput, match="did you mean Europe/Berlin"):
        cron("0 19 * * *", "Berlin")


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Sao_Paulo", "Etc/GMT+5"])
def test_a_known_time_zone_is_kept(name: str) -> None:
    assert check_timezone(name) == name
    assert cron("0 0 * * *", name).zone == ZoneInfo(name)


# -- Intervals -------------------------------------------------------------------------------


def test_an_interval_without_a_start_is_aligned_to_the_epoch() -> None:
    timing = every(60)
    assert timing.kind is TimingKind.INTERVAL
    assert timing.anchor == EPOCH
    assert timing.upcoming(utc(2026, 6, 1, 12, 0, 30), 3) == [
        utc(2026, 6, 1, 12, 1),
        utc(2026, 6, 1, 12, 2),
        utc(2026, 6, 1, 12, 3),
    ]


def test_an_hourly_interval_fires_on_the_hour_in_utc_whatever_the_zone() -> None:
    times = every(3600, timezone="Europe/Berlin").upcoming(utc(2026, 10, 25, 0, 10), 3)
    assert times == [utc(2026, 10, 25, 1), utc(2026, 10, 25, 2), utc(2026, 10, 25, 3)]


def test_an_interval_with_a_start_counts_from_the_start() -> None:
    start = datetime(2026, 6, 1, 14, 0, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    timing = every(90, start=start)
    assert timing.anchor == utc(2026, 6, 1, 12, 0, 10)
    assert timing.anchor.tzinfo is UTC
    assert timing.upcoming(utc(2026, 6, 1, 11), 3) == [
        utc(2026, 6, 1, 12, 0, 10),
        utc(2026, 6, 1, 12, 1, 40),
        utc(2026, 6, 1, 12, 3, 10),
    ]
    assert timing.next_after(utc(2026, 6, 2, 12, 0, 10)) == utc(2026, 6, 2, 12, 1, 40)


def test_next_after_an_exact_fire_time_is_the_following_one() -> None:
    timing = every(60)
    assert timing.next_after(utc(2026, 6, 1, 12, 0)) == utc(2026, 6, 1, 12, 1)
    start = utc(2026, 6, 1, 12, 0, 10)
    assert every(90, start=start).next_after(start) == start + timedelta(seconds=90)
    assert cron("0 12 * * *").next_after(utc(2026, 6, 1, 12)) == utc(2026, 6, 2, 12)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (datetime(2026, 6, 1, 11, 59, 59, 999_999, tzinfo=UTC), utc(2026, 6, 1, 12, 0)),
        (datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=UTC), utc(2026, 6, 1, 12, 1)),
        (datetime(2026, 6, 1, 12, 0, 59, 999_999, tzinfo=UTC), utc(2026, 6, 1, 12, 1)),
    ],
)
def test_an_interval_handles_microseconds(after: datetime, expected: datetime) -> None:
    assert every(60).next_after(after) == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (datetime(2026, 6, 1, 11, 59, 59, 999_999, tzinfo=UTC), utc(2026, 6, 1, 12)),
        (datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC), utc(2026, 6, 2, 12)),
    ],
)
def test_a_cron_handles_microseconds(after: datetime, expected: datetime) -> None:
    assert cron("0 12 * * *").next_after(after) == expected


def test_a_six_field_cron_handles_microseconds_around_its_second() -> None:
    timing = cron("15 30 2 * * *", "Europe/Berlin")
    fire = utc(2026, 6, 1, 0, 30, 15)
    assert timing.next_after(fire - timedelta(microseconds=1)) == fire
    assert timing.next_after(fire + timedelta(microseconds=1)) == fire + timedelta(days=1)


def test_a_start_with_microseconds_is_cut_to_the_whole_second() -> None:
    timing = every(60, start=datetime(2026, 6, 1, 12, 0, 0, 700_000, tzinfo=UTC))
    assert timing.anchor == utc(2026, 6, 1, 12)
    assert timing.next_after(datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)) == utc(
        2026, 6, 1, 12, 1
    )


def test_before_its_start_an_interval_fires_first_at_the_start() -> None:
    start = utc(2026, 6, 1, 12)
    assert every(3600, start=start).next_after(utc(2020, 1, 1)) == start


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.integers(1, 366 * 86400),
    start=st.none()
    | st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)
    ),
    after=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_an_interval_fires_on_its_grid_within_one_step_after(
    seconds: int, start: datetime | None, after: datetime
) -> None:
    timing = every(seconds, start=start)
    fired = timing.next_after(after)
    assert fired is not None
    assert fired > after
    assert fired.microsecond == 0
    if after >= timing.anchor:
        assert fired - after <= timedelta(seconds=seconds)
        assert (fired - timing.anchor) % timedelta(seconds=seconds) == timedelta(0)
    else:
        assert fired == timing.anchor


@pytest.mark.parametrize(
    ("seconds", "problem"),
    [
        (0, "must be a whole number of seconds from 1 to 31622400"),
        (-60, "must be a whole number of seconds from 1 to 31622400"),
        (0.5, "must be a whole number of seconds from 1 to 31622400"),
        (1.5, "must be a whole number of seconds from 1 to 31622400"),
        (366 * 86400 + 1, "must be a whole number of seconds from 1 to 31622400"),
        (float("inf"), "must be a whole number of seconds from 1 to 31622400"),
        (float("nan"), "must be a whole number of seconds from 1 to 31622400"),
        (True, "must be a number of seconds"),
        ("60", "must be a number of seconds"),
        (None, "must be a number of seconds"),
    ],
)
def test_an_interval_must_be_whole_seconds_from_one_second_to_366_days(
    seconds: object, problem: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        every(seconds)  # type: ignore[arg-type]
    assert caught.value.field == "interval"
    assert caught.value.problem == problem


@pytest.mark.parametrize("seconds", [1, 1.0, 60, 59.0, 366 * 86400])
def test_an_interval_at_the_limits_is_accepted(seconds: float) -> None:
    assert every(seconds).interval == float(seconds)


def test_an_interval_start_must_be_aware() -> None:
    with pytest.raises(InvalidInput) as caught:
        every(60, start=datetime(2026, 6, 1))
    assert (caught.value.field, caught.value.problem) == (
        "start_at",
        "must be a date-time with a time zone",
    )


def test_an_interval_refuses_an_unknown_zone() -> None:
    with pytest.raises(InvalidInput) as caught:
        every(60, timezone="Mars/Olympus")
    assert caught.value.field == "timezone"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("90", 90),
        ("90s", 90),
        ("2h", 7200),
        ("1d", 86400),
        ("1.5h", 5400),
        (" 15 m ", 900),
        ("15M", 900),
    ],
)
def test_parse_interval_reads_a_duration(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["15x", "", "m", "-5m", "1e3", "15mm", "1w", "15 minutes"])
def test_parse_interval_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_interval(text)
    assert caught.value.field == "interval"
    assert caught.value.problem == f"{text!r} is not a duration like 30s, 15m, 2h or 1d"


# -- One-offs -------------------------------------------------------------------------------


def test_a_one_off_fires_once_at_its_time() -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    timing = once(at)
    assert timing.kind is TimingKind.ONCE
    assert timing.anchor == utc(2026, 5, 1, 6, 30)
    assert timing.next_after(utc(2026, 1, 1)) == utc(2026, 5, 1, 6, 30)
    assert timing.next_after(utc(2026, 5, 1, 6, 30) - timedelta(microseconds=1)) == utc(
        2026, 5, 1, 6, 30
    )
    assert timing.next_after(utc(2026, 5, 1, 6, 30)) is None
    assert timing.upcoming(utc(2026, 1, 1), 5) == [utc(2026, 5, 1, 6, 30)]


@pytest.mark.parametrize("at", [datetime(2026, 5, 1, 12), "2026-05-01T12:00:00Z", None])
def test_a_one_off_needs_an_aware_datetime(at: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        once(at)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.problem) == (
        "at",
        "must be a date-time with a time zone",
    )


# -- Upcoming and descriptions --------------------------------------------------------------


def test_upcoming_stops_at_count_and_until() -> None:
    timing = cron("0 * * * *")
    assert len(timing.upcoming(utc(2026, 6, 1), 5)) == 5
    assert timing.upcoming(utc(2026, 6, 1), 100, until=utc(2026, 6, 1, 3)) == [
        utc(2026, 6, 1, 1),
        utc(2026, 6, 1, 2),
        utc(2026, 6, 1, 3),
    ]
    assert timing.upcoming(utc(2026, 6, 1), 0) == []


def test_an_aware_start_in_any_zone_means_the_same_instant() -> None:
    timing = cron("0 19 * * *", "America/Sao_Paulo")
    instant = utc(2026, 6, 1, 12)
    local = instant.astimezone(ZoneInfo("Asia/Kolkata"))
    assert timing.next_after(local) == timing.next_after(instant) == utc(2026, 6, 1, 22)


@pytest.mark.parametrize(
    ("timing", "text"),
    [
        (cron("0 19 * * *", "America/Sao_Paulo"), "At 19:00 every day (America/Sao_Paulo)"),
        (cron("15 30 2 * * *", "Europe/Berlin"), "At 02:30:15 every day (Europe/Berlin)"),
        (every(60), "Every 1 minute"),
        (every(5400), "Every 90 minutes"),
        (every(7200), "Every 2 hours"),
        (every(86400), "Every 1 day"),
        (every(90), "Every 90 seconds"),
        (every(1), "Every 1 second"),
        (
            once(utc(2026, 3, 29, 1), "Europe/Berlin"),
            "Once, at 2026-03-29 03:00:00 (Europe/Berlin)",
        ),
    ],
)
def test_describe_says_the_rule_in_words(timing: Timing, text: str) -> None:
    assert timing.describe() == text


def test_timing_from_takes_exactly_one_choice() -> None:
    from conveyor.domain.timing import timing_from

    assert timing_from({"cron": "0 19 * * *"}, "Europe/Berlin").cron == "0 19 * * *"
    assert timing_from({"interval": "15m"}).interval == 900.0
    at = datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert timing_from({"at": at}).anchor == at
    with pytest.raises(InvalidInput, match="cron: give one of cron, interval or at"):
        timing_from({})
    with pytest.raises(InvalidInput, match=r"interval: give only one of .* \(cron too\)"):
        timing_from({"cron": "* * * * *", "interval": 60})


def test_retimed_reads_the_same_rule_in_a_new_zone_or_from_a_new_start() -> None:
    from conveyor.domain.timing import retimed

    daily = cron("0 19 * * *", "UTC")
    assert retimed(daily) is None
    moved = retimed(daily, "America/Sao_Paulo")
    assert moved is not None
    assert (moved.cron, moved.timezone) == ("0 19 * * *", "America/Sao_Paulo")
    start = datetime(2030, 1, 1, 0, 0, 7, tzinfo=UTC)
    restarted = retimed(every(60), start=start, restart=True)
    assert restarted is not None
    assert restarted.anchor == start
    assert retimed(daily, start=start, restart=True) is None  # only intervals restart


@pytest.mark.parametrize("year", [1969, 3000, 9999])
def test_date_times_outside_1970_to_2999_are_refused_by_name(year: int) -> None:
    moment = datetime(year, 6, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="at: must be a date-time from 1970 to 2999"):
        once(moment)
    with pytest.raises(InvalidInput, match="start_at: must be a date-time from 1970 to 2999"):
        every(60, start=moment)
