"""The webhooks tests' fixtures, over :mod:`tests.webhooks.delivery_support`: a world
(an event store on a fresh PostgreSQL schema, with its secret keys), a receiver, and the
in-process daemons a test starts, stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.delivery_support import RunningDaemon, World, make_world
from tests.webhooks.receiver import Receiver


@pytest.fixture
def world(pg_schema: str) -> Iterator[World]:
    made = make_world(pg_schema)
    yield made
    made.app.close()


@pytest.fixture
def running(world: World) -> Iterator[list[RunningDaemon]]:
    """Daemons a test starts (``running.append(RunningDaemon(world))``), stopped after."""
    started: list[RunningDaemon] = []
    yield started
    for daemon in started:
        if daemon._thread.is_alive():
            daemon.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver knowing no secret yet (``world.subscribed`` gives it its endpoint's);
    closed after the test, its hanging requests answered first."""
    made = Receiver([])
    yield made
    made.close()
