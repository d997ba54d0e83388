"""The events feed's cursor and its time parameter, as query-parameter types.

A cursor is opaque to consumers: the unpadded base64url of ``v1:<position>``, where the
position is the event's notification id (the ``public_events`` read model's key). The
``v1:`` prefix lets a later form be told apart from this one. :data:`CURSOR_PATTERN` is
exactly the set of strings :func:`decode_cursor` takes (every run of 3 digits is 4
base64 characters, a last 1 or 2 digits are 2 or 3), so the OpenAPI document does not
allow a cursor the service refuses; positions run to 18 digits (a BIGINT holds them).
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

PREFIX = "v1:"
_ENCODED_PREFIX = "djE6"  # base64 of PREFIX: 3 bytes, 4 characters, no padding
# Base64 of ASCII digits: "0011dddd" bytes, so each character takes few values.
_THREE = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"  # 3 digits
_ONE = "(?:[MN][AQgw]|O[AQ])"  # 1 digit
_TWO = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk]"  # 2 digits
CURSOR_PATTERN = rf"^{_ENCODED_PREFIX}(?:(?:{_THREE}){{1,6}}|(?:{_THREE}){{0,5}}(?:{_ONE}|{_TWO}))$"
_CURSOR = re.compile(CURSOR_PATTERN)
NOT_A_CURSOR = "is not a cursor this API gave (pass `next` from an answer as it is)"

# RFC 3339 section 5.6 date-time: an offset is required, seconds are not optional.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:(?P<second>\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def encode_cursor(position: int) -> str:
    """The cursor that continues after ``position``."""
    if not 0 <= position < 10**18:
        raise ValueError(f"position {position} is outside what a cursor holds")
    raw = f"{PREFIX}{position}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: object) -> int:
    """The position ``cursor`` continues after; ``ValueError`` for anything else."""
    if not isinstance(cursor, str) or not _CURSOR.fullmatch(cursor):
        raise ValueError(NOT_A_CURSOR)
    padded = cursor + "=" * (-len(cursor) % 4)
    return int(base64.urlsafe_b64decode(padded).decode("ascii").removeprefix(PREFIX))


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
