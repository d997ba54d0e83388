"""The wrong-token counter of the worker (pure logic, a fake clock)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from a4c_worker.attempts import AttemptLimit, WrongAttempts
from a4c_worker.config import SettingsError, load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttled_past_the_limit_until_the_window_that_began_with_the_first_passes() -> None:
    clock = Clock()
    attempts = WrongAttempts(AttemptLimit(max_wrong=2, window_seconds=60), clock)
    for _ in range(2):
        attempts.record_wrong("inv-a")
        assert attempts.retry_after("inv-a") is None
    clock.now += 10
    attempts.record_wrong("inv-a")
    assert attempts.retry_after("inv-a") == 50
    assert attempts.retry_after("inv-b") is None
    clock.now += 50
    assert attempts.retry_after("inv-a") is None
    attempts.record_wrong("inv-a")
    assert attempts.retry_after("inv-a") is None  # a new window, counting from one


def test_the_longest_untouched_invitation_is_forgotten_first() -> None:
    attempts = WrongAttempts(AttemptLimit(max_wrong=1, window_seconds=60), Clock(), max_tracked=2)
    for key in ("old", "old", "new", "new"):
        attempts.record_wrong(key)
    attempts.record_wrong("newest")
    assert attempts.retry_after("old") is None
    assert attempts.retry_after("new") is not None


@pytest.mark.parametrize("fields", [{"max_wrong": 0}, {"window_seconds": 0}])
def test_a_limit_that_would_refuse_everything_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        AttemptLimit.model_validate(fields)


def test_the_limit_is_configured_by_name() -> None:
    development = {"WORKFLOW_MODE": "development"}
    with pytest.raises(SettingsError) as refused:
        load_settings(
            development | {"A4C_ACCEPT_MAX_WRONG": "0", "A4C_ACCEPT_WINDOW_SECONDS": "x"}, "client"
        )
    assert set(refused.value.variables) == {"A4C_ACCEPT_MAX_WRONG", "A4C_ACCEPT_WINDOW_SECONDS"}
    settings = load_settings(development | {"A4C_ACCEPT_MAX_WRONG": "3"}, "client")
    assert (settings.a4c_accept_max_wrong, settings.a4c_accept_window_seconds) == (3, 900)
