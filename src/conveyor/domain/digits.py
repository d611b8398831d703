"""Numbers written by people or other programs: ASCII digits only.

``str.isdigit`` also accepts characters such as ``²`` that ``int`` refuses, so a check
with it alone lets such input through to a ``ValueError``.
"""

from __future__ import annotations

from conveyor.domain.errors import InvalidInput


def is_digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits."""
    return text.isascii() and text.isdigit()


def whole_number(field: str, raw: object, low: int, high: int, problem: str = "") -> int:
    """``raw`` as a whole number from ``low`` to ``high``; ``InvalidInput`` naming
    ``field`` (with ``problem``, or the range) otherwise."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not is_digits(text) or len(text) > len(str(high)) or not low <= int(text) <= high:
        raise InvalidInput(field, problem or f"must be a whole number from {low} to {high}")
    return int(text)
