"""Numbers from outside: only ASCII digits pass, so ``int`` never raises on them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.domain.digits import is_digits, whole_number
from conveyor.domain.errors import InvalidInput
from conveyor.domain.hooks import BadSignature, verify_standard
from conveyor.domain.timing import cron


@pytest.mark.parametrize("text", ["²", "١٢", "٣", "1²", "", "-1", "1.0", "1 000"])
def test_what_is_not_ascii_digits_is_refused(text: str) -> None:
    assert not is_digits(text)
    with pytest.raises(InvalidInput) as caught:
        whole_number("cursor", text, 0, 10**6)
    assert caught.value.field == "cursor"


def test_whole_numbers_in_range_pass_and_others_name_the_field() -> None:
    assert whole_number("n", "42", 1, 100) == 42
    assert whole_number("n", " 7 ", 1, 100) == 7
    with pytest.raises(InvalidInput, match="from 1 to 100"):
        whole_number("n", "101", 1, 100)
    with pytest.raises(InvalidInput):
        whole_number("n", "9" * 5000, 1, 100)  # no huge int conversion
    with pytest.raises(InvalidInput):
        whole_number("n", None, 1, 100)


def test_a_cron_step_in_other_digits_is_a_named_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        cron("*/² * * * *")
    assert caught.value.field == "cron"


def test_a_webhook_timestamp_in_other_digits_is_a_bad_signature() -> None:
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "²", "webhook-signature": "v1,x"}
    with pytest.raises(BadSignature, match="webhook-timestamp"):
        verify_standard("whsec_c2VjcmV0", headers, b"{}", datetime.now(UTC))
