"""When to try a delivery again: the Standard Webhooks retry schedule, jitter, Retry-After.

The schedule lists the delay before each attempt, counted from the previous one: the
specification's is immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h
(ten attempts over about three days). Once every delay is used the delivery is exhausted
and the daemon parks it.

Each delay gets ±10 % jitter, so endpoints that failed together (one outage) are not
all retried in the same second. A receiver's ``Retry-After`` (a 429 or 503) is honoured
as a lower bound, capped at 24 hours so a receiver cannot park a delivery for ever; it
never adds attempts.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_SCHEDULE: tuple[float, ...] = (
    0,
    5,
    300,
    1800,
    7200,
    18000,
    36000,
    50400,
    72000,
    86400,
)
JITTER = 0.10
RETRY_AFTER_CAP = 86400.0  # 24 h
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_DELTA_SECONDS = re.compile(r"\d+")


class ScheduleError(ValueError):
    """A retry schedule in the configuration is malformed; the message names the item."""


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"0,5s,5m,30m,2h"`` as seconds; a bare number is seconds, units s, m, h, d."""
    items = text.split(",")
    delays: list[float] = []
    for position, item in enumerate(items, start=1):
        match = _DURATION.fullmatch(item.strip().lower())
        if match is None:
            raise ScheduleError(
                f"retry schedule item {position} ({item.strip()!r}) is not a duration "
                "like 30, 5s, 5m, 2h or 1d"
            )
        delay = float(match[1]) * _UNITS[match[2]]
        if not math.isfinite(delay):
            raise ScheduleError(f"retry schedule item {position} ({item.strip()!r}) is too long")
        delays.append(delay)
    return tuple(delays)


def next_delay(
    schedule: tuple[float, ...],
    attempts_made: int,
    retry_after: float | None,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` when the schedule is used up.

    ``attempts_made`` is how many attempts were already made (0: the first is still to
    come). ``retry_after`` is the last response's Retry-After in seconds, if any.
    """
    if attempts_made < 0:
        raise ValueError("attempts_made cannot be negative")
    if attempts_made >= len(schedule):
        return None
    delay = max(0.0, schedule[attempts_made] * rng.uniform(1 - JITTER, 1 + JITTER))
    if retry_after is not None:
        delay = max(delay, min(max(retry_after, 0.0), RETRY_AFTER_CAP))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (RFC 9110 §10.2.3) as seconds from ``now``; junk → None.

    Either delta-seconds (digits only) or an HTTP-date; a date in the past is 0.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


__all__ = [
    "DEFAULT_SCHEDULE",
    "JITTER",
    "RETRY_AFTER_CAP",
    "ScheduleError",
    "next_delay",
    "parse_retry_after",
    "parse_schedule",
]
