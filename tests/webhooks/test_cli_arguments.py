"""``a4c-webhooks replay`` takes where to start as the events feed names it: a position, or
the events API's cursor (an answer's ``next``), so an operator can replay from where a
consumer stands without decoding anything."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from a4c_domain.feed_cursor import encode_cursor
from a4c_webhooks.cli import parser


def replay(*arguments: str) -> tuple[object, object]:
    args = parser().parse_args(["replay", "--endpoint", str(uuid4()), *arguments])
    return args.after, args.until


def test_a_cursor_is_its_position() -> None:
    assert replay("--after", encode_cursor(1234)) == (1234, None)
    assert replay("--after", "1234", "--until", encode_cursor(2000)) == (1234, 2000)


def test_a_position_and_a_time_still_work() -> None:
    after, until = replay("--after", "0", "--until", "2026-12-07T08:00:00+00:00")
    assert after == 0
    assert until == datetime(2026, 12, 7, 8, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["djE6abc", "-5", "v1:12", "next"])
def test_anything_else_is_refused_by_name(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        replay("--after", bad)
    assert exit.value.code == 2
    assert "position" in capsys.readouterr().err
