"""The retry schedule: the specification's delays, configurable, jittered, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from a4c_webhooks.schedule import (
    DEFAULT_SCHEDULE,
    RETRY_AFTER_CAP,
    ScheduleError,
    next_delay,
    parse_retry_after,
    parse_schedule,
)

NOW = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
schedules = st.lists(
    st.floats(min_value=0, max_value=10 * 86400, allow_nan=False), min_size=1, max_size=12
).map(tuple)
retry_afters = st.none() | st.floats(min_value=-10, max_value=10 * 86400, allow_nan=False)


def test_the_default_schedule_is_the_specifications() -> None:
    spelled = "0, 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h"
    assert parse_schedule(spelled) == DEFAULT_SCHEDULE
    assert len(DEFAULT_SCHEDULE) == 10
    assert sum(DEFAULT_SCHEDULE) == pytest.approx(3 * 86400 + 3 * 3600 + 35 * 60 + 5)


def test_durations_take_units_or_plain_seconds() -> None:
    assert parse_schedule("0,5,1.5s,2m,1h,1d,3H") == (0, 5, 1.5, 120, 3600, 86400, 10800)


@pytest.mark.parametrize(
    ("text", "item"),
    [
        ("", "item 1 ('')"),
        ("0,5x,5m", "item 2 ('5x')"),
        ("1,2,-3", "item 3 ('-3')"),
        ("5m,,1h", "item 2 ('')"),
        ("1e3", "item 1 ('1e3')"),
        ("9" * 400, "too long"),
    ],
)
def test_a_bad_item_is_named(text: str, item: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_schedule(text)
    assert item in str(refused.value)


def test_each_attempt_waits_its_delay_then_the_schedule_is_exhausted() -> None:
    rng = random.Random(7)
    for attempts_made, delay in enumerate(DEFAULT_SCHEDULE):
        waited = next_delay(DEFAULT_SCHEDULE, attempts_made, None, rng)
        assert waited is not None
        assert delay * 0.9 <= waited <= delay * 1.1
    assert next_delay(DEFAULT_SCHEDULE, len(DEFAULT_SCHEDULE), None, rng) is None
    assert next_delay(DEFAULT_SCHEDULE, len(DEFAULT_SCHEDULE), 60.0, rng) is None


def test_jitter_spreads_the_delays() -> None:
    rng = random.Random(1)
    delays = {next_delay(DEFAULT_SCHEDULE, 3, None, rng) for _ in range(50)}
    assert len(delays) > 40


def test_retry_after_is_a_lower_bound_capped_at_a_day() -> None:
    rng = random.Random(3)
    assert next_delay(DEFAULT_SCHEDULE, 1, 120.0, rng) == 120.0
    assert next_delay(DEFAULT_SCHEDULE, 1, 10 * 86400.0, rng) == RETRY_AFTER_CAP
    waited = next_delay(DEFAULT_SCHEDULE, 4, 1.0, rng)
    assert waited is not None and waited >= 7200 * 0.9


@given(schedules, st.integers(min_value=0, max_value=20), retry_afters, st.integers())
def test_next_delay_properties(
    schedule: tuple[float, ...], attempts_made: int, retry_after: float | None, seed: int
) -> None:
    delay = next_delay(schedule, attempts_made, retry_after, random.Random(seed))
    if attempts_made >= len(schedule):
        assert delay is None
        return
    assert delay is not None
    assert delay >= 0
    planned = schedule[attempts_made]
    floor = 0.0 if retry_after is None else min(max(retry_after, 0.0), RETRY_AFTER_CAP)
    assert delay >= floor
    assert delay <= max(planned * 1.1, floor) + 1e-9
    assert delay >= planned * 0.9 - 1e-9


def test_negative_attempts_are_a_mistake() -> None:
    with pytest.raises(ValueError, match="negative"):
        next_delay(DEFAULT_SCHEDULE, -1, None, random.Random(0))


@given(st.integers(min_value=0, max_value=10**12))
def test_retry_after_delta_seconds(seconds: int) -> None:
    assert parse_retry_after(f" {seconds} ", NOW) == float(seconds)


@pytest.mark.parametrize(
    "date",
    [
        "Mon, 07 Dec 2026 10:02:00 GMT",  # IMF-fixdate
        "Monday, 07-Dec-26 10:02:00 GMT",  # obsolete RFC 850
        "Mon Dec  7 10:02:00 2026",  # obsolete asctime
    ],
)
def test_retry_after_http_dates(date: str) -> None:
    assert parse_retry_after(date, NOW) == 120.0


def test_a_past_date_is_now() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW) == 0.0
    assert parse_retry_after("Mon, 07 Dec 2026 10:00:30 GMT", NOW + timedelta(hours=1)) == 0.0


@pytest.mark.parametrize("junk", [None, "", "soon", "-5", "1.5", "12 seconds", "0x10", "Mon, 99"])
def test_junk_retry_after_is_none(junk: str | None) -> None:
    assert parse_retry_after(junk, NOW) is None


@given(st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    parsed = parse_retry_after(value, NOW)
    assert parsed is None or parsed >= 0
