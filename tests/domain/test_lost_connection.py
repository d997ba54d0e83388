"""The bound on running a command again after a lost store connection (pure logic: the
real lost connections are in tests/failover)."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from a4c_domain.errors import StoreUnavailable
from a4c_domain.lost_connection import (
    STORE_RETRY_ATTEMPTS,
    STORE_RETRY_SECONDS,
    run_again_when_lost,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_a_lost_connection_is_tried_again_until_it_answers() -> None:
    clock = Clock()
    failures = [OperationalError("server closed the connection"), InterfaceError("closed")]

    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert run_again_when_lost("register", call, sleep=clock.sleep, clock=clock) == "done"
    assert clock.waits == [0.25, 0.5]


@pytest.mark.parametrize("seconds_per_call", [0.0, 1.0, 30.0])
def test_it_gives_up_within_its_bounds_with_a_typed_retryable_error(
    seconds_per_call: float,
) -> None:
    clock = Clock()
    calls = 0

    def call() -> str:
        nonlocal calls
        calls += 1
        clock.now += seconds_per_call  # a call may itself wait (eventsourcing retries)
        raise OperationalError("connection refused at 10.0.0.1")

    with pytest.raises(StoreUnavailable, match=r"^invite: the event store did not answer") as e:
        run_again_when_lost("invite", call, sleep=clock.sleep, clock=clock)
    assert e.value.retryable
    assert isinstance(e.value.__cause__, OperationalError)
    assert calls <= STORE_RETRY_ATTEMPTS
    # No new attempt starts past the bound; one already started may finish.
    assert clock.now <= STORE_RETRY_SECONDS + seconds_per_call


def test_anything_else_is_not_retried() -> None:
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        run_again_when_lost("register", call, sleep=lambda _: None)
    assert calls == 1
