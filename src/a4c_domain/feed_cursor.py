"""The events feed's cursor: what ``GET /v1/events`` answers as ``next`` and takes as ``after``.

A cursor is opaque to consumers: the unpadded base64url of ``v1:<position>``, where the
position is the event's notification id (the ``public_events`` read model's key). The
``v1:`` prefix lets a later form be told apart from this one. :data:`CURSOR_PATTERN` is
exactly the set of strings :func:`decode_cursor` takes (every run of 3 digits is 4
base64 characters, a last 1 or 2 digits are 2 or 3), so the OpenAPI document does not
allow a cursor the service refuses; positions run to 18 digits (a BIGINT holds them).
Defined here, with the public events, so every reader of the feed (the API, the webhook
daemon's replay, another service) speaks the same cursor.
"""

from __future__ import annotations

import base64
import re

PREFIX = "v1:"
_ENCODED_PREFIX = "djE6"  # base64 of PREFIX: 3 bytes, 4 characters, no padding
# Base64 of ASCII digits: "0011dddd" bytes, so each character takes few values.
_THREE = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"  # 3 digits
_ONE = "(?:[MN][AQgw]|O[AQ])"  # 1 digit
_TWO = "(?:[MN][DTjz]|O[DT])[AEIMQUYcgk]"  # 2 digits
CURSOR_PATTERN = rf"^{_ENCODED_PREFIX}(?:(?:{_THREE}){{1,6}}|(?:{_THREE}){{0,5}}(?:{_ONE}|{_TWO}))$"
_CURSOR = re.compile(CURSOR_PATTERN)
NOT_A_CURSOR = "is not a cursor this API gave (pass `next` from an answer as it is)"


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
