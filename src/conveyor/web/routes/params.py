"""Path and query parameters shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from conveyor.domain.digits import whole_number

MAX_ID = 2**63 - 1

JobId = Annotated[int, Path(ge=1, le=MAX_ID, description="A job id")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page")]
Cursor = Annotated[
    str | None, Query(max_length=32, description="``next_cursor`` of the previous page")
]
After = Annotated[int, Query(ge=0, le=MAX_ID, description="Return items after this id")]


def parse_cursor(cursor: str | None) -> int | None:
    """The id a page cursor stands for."""
    if cursor is None or cursor == "":
        return None
    return whole_number("cursor", cursor, 0, MAX_ID, "is not a cursor this API returned")
