"""Reading a built-in task's payload: each field checked, errors naming the field.

A payload that fails these checks cannot succeed on a later attempt, so the
handlers turn ``InvalidInput`` into ``Discard`` (see :func:`parsed`): the job goes
to the dead-letter set at once instead of being retried.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from conveyor.domain.errors import InvalidInput
from conveyor.domain.outcomes import Discard

T = TypeVar("T")
Payload = Mapping[str, Any]


def parsed(task: str, parse: Callable[[Payload], T], payload: Payload) -> T:
    """``parse(payload)``, with a bad payload turned into ``Discard`` (no retry)."""
    try:
        return parse(payload)
    except InvalidInput as exc:
        raise Discard(f"invalid {task} payload: {exc.message}") from None


def only_fields(payload: Payload, known: tuple[str, ...]) -> None:
    """Refuse fields the task does not know (a typo would otherwise be ignored)."""
    unknown = sorted(set(payload) - set(known))
    if unknown:
        raise InvalidInput(unknown[0], f"is not a field of this task (known: {', '.join(known)})")


def text(payload: Payload, name: str, default: str | None = None) -> str | None:
    """An optional string field without NUL characters."""
    value = payload.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    if "\x00" in value:
        raise InvalidInput(name, "must not contain NUL characters")
    return value


def required_text(payload: Payload, name: str) -> str:
    """A string field that must be given and not be empty."""
    value = text(payload, name)
    if not value:
        raise InvalidInput(name, "is required")
    return value


def seconds(payload: Payload, name: str, default: float, maximum: float) -> float:
    """A positive number of seconds, at most ``maximum``."""
    value = payload.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(name, "must be a number of seconds")
    if not 0 < value <= maximum:
        raise InvalidInput(name, f"must be more than 0 and at most {maximum:g} seconds")
    return float(value)


def string_map(payload: Payload, name: str, *, line_breaks: bool = False) -> dict[str, str]:
    """An object of string values (headers, environment variables); ``{}`` if absent.
    Keys and values never hold NUL, nor line breaks unless ``line_breaks``."""
    value = payload.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(name, "must be an object of strings")
    forbidden = "\x00" if line_breaks else "\x00\r\n"
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidInput(f"{name}.{key}", "must be a string")
        if any(c in item or c in key for c in forbidden):
            what = "NUL characters" if line_breaks else "NUL characters or line breaks"
            raise InvalidInput(f"{name}.{key}", f"must not contain {what}")
    return dict(value)
