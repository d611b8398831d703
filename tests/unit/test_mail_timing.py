"""When a user's daily summary is due: local time in the user's zone, DST-correct
(America/Sao_Paulo's 2018 midnight gap, Europe/Berlin's 02:00 gap and 03:00 repeat),
once per local day, never for a day gone by."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.mail import (
    MailPreferences,
    check_time_zone,
    due_summary,
    parse_summary_at,
    summary_due,
)

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_19_00_local_is_19_00_in_the_users_zone() -> None:
    assert summary_due(date(2018, 7, 1), time(19), SAO_PAULO) == utc(2018, 7, 1, 22)
    assert summary_due(date(2024, 7, 1), time(19), BERLIN) == utc(2024, 7, 1, 17)
    assert summary_due(date(2024, 1, 15), time(19), BERLIN) == utc(2024, 1, 15, 18)


def test_a_time_skipped_by_dst_comes_right_after_the_gap() -> None:
    # Sao Paulo, 4 Nov 2018: clocks went from 00:00 to 01:00 (-03 to -02).
    assert summary_due(date(2018, 11, 4), time(0, 30), SAO_PAULO) == utc(2018, 11, 4, 3)
    assert summary_due(date(2018, 11, 4), time(19), SAO_PAULO) == utc(2018, 11, 4, 21)
    # Berlin, 31 Mar 2024: 02:00 to 03:00.
    assert summary_due(date(2024, 3, 31), time(2, 30), BERLIN) == utc(2024, 3, 31, 1)


def test_a_time_that_happens_twice_comes_at_its_first_occurrence() -> None:
    # Berlin, 27 Oct 2024: 02:30 happens at 00:30 and 01:30 UTC.
    assert summary_due(date(2024, 10, 27), time(2, 30), BERLIN) == utc(2024, 10, 27, 0, 30)
    # Sao Paulo, 17 Feb 2018: 23:30 happens twice (-02, then -03).
    assert summary_due(date(2018, 2, 17), time(23, 30), SAO_PAULO) == utc(2018, 2, 18, 1, 30)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2024, 3, 31, 16, 59), None),
        (utc(2024, 3, 31, 17, 0), (date(2024, 3, 31), utc(2024, 3, 31, 17))),
        (utc(2024, 3, 31, 21, 59), (date(2024, 3, 31), utc(2024, 3, 31, 17))),
        # After local midnight it is the next day's, not yet due: the missed one is not sent.
        (utc(2024, 3, 31, 22, 1), None),
    ],
)
def test_the_summary_is_due_from_its_time_to_the_end_of_the_local_day(
    now: datetime, expected: tuple[date, datetime] | None
) -> None:
    assert due_summary(now, MailPreferences("Europe/Berlin")) == expected


def test_a_summary_turned_off_is_never_due() -> None:
    off = MailPreferences("UTC", time(19), summary_enabled=False)
    assert due_summary(utc(2024, 1, 1, 20), off) is None


def test_preferences_are_checked() -> None:
    assert parse_summary_at("07:05") == time(7, 5)
    assert check_time_zone("America/Sao_Paulo") == "America/Sao_Paulo"
    for bad in ("7:05", "24:00", "19:60", "noon"):
        with pytest.raises(InvalidInput):
            parse_summary_at(bad)
    for zone in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(InvalidInput):
            check_time_zone(zone)


@pytest.mark.parametrize("zone", ["America", "Etc", "UTC\x00", "/etc/passwd", "..", "\u0661\u0669"])
def test_a_folder_or_path_is_not_a_time_zone(zone: str) -> None:
    with pytest.raises(InvalidInput):
        check_time_zone(zone)


def test_only_ascii_digits_make_a_time_or_an_id() -> None:
    from conveyor.domain.mail import rule_spec

    with pytest.raises(InvalidInput):
        parse_summary_at("\u0661\u0669:\u0660\u0660")
    with pytest.raises(InvalidInput):
        rule_spec("job:\u0661", ["started"], ["owner"])
