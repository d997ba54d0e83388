"""The events feed's cursor and its time parameter, as query-parameter types.

The cursor's form is :mod:`a4c_domain.feed_cursor`'s (every reader of the feed shares
it); here it becomes a query parameter whose OpenAPI pattern is exactly what it takes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from a4c_domain.feed_cursor import CURSOR_PATTERN as CURSOR_PATTERN
from a4c_domain.feed_cursor import decode_cursor as decode_cursor
from a4c_domain.feed_cursor import encode_cursor as encode_cursor

# RFC 3339 section 5.6 date-time: an offset is required, seconds are not optional.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:(?P<second>\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def parse_time(value: object) -> datetime:
    """An RFC 3339 date-time (with its offset) as an aware datetime. A leap second (60)
    counts as the minute's last second, which is all Python's datetime can hold."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must have a UTC offset (RFC 3339, e.g. 2026-12-07T08:00:00Z)")
        return value
    found = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-12-07T08:00:00Z")
    assert isinstance(value, str)
    text = value.upper()
    if found["second"] == "60":
        start, end = found.span("second")
        text = text[:start] + "59" + text[end:]
    try:
        found_time = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("is not a date and time that exists") from None
    try:
        return found_time.astimezone(UTC)
    except OverflowError:  # within an offset of year 1 or 9999: before or after any event
        return (
            datetime.min.replace(tzinfo=UTC)
            if found_time.year == 1
            else datetime.max.replace(tzinfo=UTC)
        )


# Query parameter types: FastAPI validates them, so a bad one is the same 422 problem
# (``errors`` naming ``query.after`` / ``query.range_start``) as any other bad field.
Cursor = Annotated[
    int,
    BeforeValidator(decode_cursor),
    WithJsonSchema({"type": "string", "pattern": CURSOR_PATTERN}),
]
Instant = Annotated[
    datetime,
    BeforeValidator(parse_time),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
