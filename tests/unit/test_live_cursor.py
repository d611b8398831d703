"""A live client's resume point is bad input when it is not an event id a store can hold."""

from __future__ import annotations

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.services.live import MAX_EVENT_ID, event_cursor


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", str(MAX_EVENT_ID + 1), "9" * 30])
def test_a_bad_last_event_id_is_refused_by_name(value: str) -> None:
    with pytest.raises(InvalidInput, match="last_event_id"):
        event_cursor(value)


@pytest.mark.parametrize(("value", "cursor"), [(None, None), ("", None), ("0", 0), ("42", 42)])
def test_a_good_last_event_id_is_a_cursor(value: str | None, cursor: int | None) -> None:
    assert event_cursor(value) == cursor
