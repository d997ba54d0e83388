"""The event store and application every package's tests share: ``store`` (empty, on
SQLite and on PostgreSQL), ``clock`` (moved by the test) and ``app`` (on both)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from a4c_domain import OnboardingApplication
from tests.domain.support import FakeClock, Store, sqlite_store
from tests.servers.postgres import postgres_env


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty event store on SQLite, then on PostgreSQL. PostgreSQL comes from
    ``pg_schema`` (tests/servers/postgres.py), which errors when the server is not
    there: the "postgres" half never skips."""
    if request.param == "sqlite":
        result = sqlite_store(str(tmp_path / "events.sqlite"))
    else:
        schema: str = request.getfixturevalue("pg_schema")
        conninfo: str = request.getfixturevalue("pg_server")
        result = Store("postgres", postgres_env(schema), conninfo=conninfo, schema=schema)
    yield result
    result.close()


@pytest.fixture
def clock() -> FakeClock:
    """The time of ``app``, moved by the test (``clock.advance``)."""
    return FakeClock()


@pytest.fixture
def app(store: Store, clock: FakeClock) -> OnboardingApplication:
    """An application on ``store`` (closed with it), with the test token secret."""
    return store.open(clock)
