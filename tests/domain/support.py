"""Helpers shared by the domain tests: building apps on a store, reading it back raw."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import psycopg

from a4c_domain import OnboardingApplication
from a4c_domain.commands import Role
from tests.support import TOKEN_SECRET

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A clock the test moves by hand (pure logic: the store stays real)."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Store:
    """One event store (a SQLite file or a PostgreSQL schema) and how to open apps on it."""

    backend: str
    env: dict[str, str]
    conninfo: str | None = None
    schema: str | None = None
    apps: list[OnboardingApplication] = field(default_factory=list)

    def open(self, clock: FakeClock | None = None, /, **extra_env: str) -> OnboardingApplication:
        env = {**self.env, "A4C_TOKEN_SECRET": TOKEN_SECRET, **extra_env}
        app = OnboardingApplication(env, clock=clock or FakeClock())
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            app.close()
        self.apps.clear()

    def raw_states(self) -> list[bytes]:
        """The ``state`` column of every stored event, exactly as stored."""
        return [row[1] for row in self.raw_rows()]

    def raw_rows(self) -> list[tuple[str, bytes]]:
        """(topic, state) of every stored event in notification order, read with SQL."""
        if self.backend == "sqlite":
            import sqlite3

            with sqlite3.connect(self.env["SQLITE_DBNAME"]) as conn:
                rows = conn.execute(
                    "SELECT topic, state FROM stored_events ORDER BY rowid"
                ).fetchall()
            return [(str(t), bytes(s)) for t, s in rows]
        assert self.conninfo is not None and self.schema is not None
        with psycopg.connect(self.conninfo) as conn:
            rows2 = conn.execute(
                f'SELECT topic, state FROM "{self.schema}".a4c_events ORDER BY notification_id'
            ).fetchall()
        return [(str(t), bytes(s)) for t, s in rows2]


def sqlite_store(path: str) -> Store:
    """A store in the SQLite file at ``path``."""
    return Store("sqlite", {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path})


def notification_count(app: OnboardingApplication) -> int:
    """How many events the store holds (ids may have gaps: count them, not the head)."""
    return len(notifications(app))


def notifications(app: OnboardingApplication) -> list[Any]:
    """Every notification (stored event + id), in notification order."""
    out: list[Any] = []
    start = 1
    while True:
        batch = app.recorder.select_notifications(start=start, limit=500)
        if not batch:
            return out
        out.extend(batch)
        start = batch[-1].id + 1


def events(app: OnboardingApplication) -> list[Any]:
    """Every stored event, decoded through the app's mapper, in notification order."""
    return [app.mapper.to_domain_event(n) for n in notifications(app)]


class Invitee(TypedDict):
    """An invite's person, typed as ``OnboardingApplication.invite`` takes it."""

    email: str
    role: Role
    first_name: str
    last_name: str


def org_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": "Acme Corp", "slug": "acme", "org_type": "provider"}
    fields.update(overrides)
    return fields


def without_position(view: Any) -> Mapping[str, Any]:
    data: dict[str, Any] = view.model_dump()
    data.pop("position")
    return data


def assert_noop(app: OnboardingApplication, command: Any, expected: Any, **fields: Any) -> Any:
    """Issue ``command(**fields)`` again: no new event, same view, position None."""
    before = notification_count(app)
    again = command(**fields)
    assert notification_count(app) == before
    assert again.position is None
    assert without_position(again) == without_position(expected)
    return again


def assert_refused(
    app: OnboardingApplication, error: type[BaseException], command: Any, **fields: Any
) -> BaseException:
    """``command(**fields)`` raises exactly ``error`` (or a subclass) and stores nothing."""
    import pytest

    before = notification_count(app)
    with pytest.raises(error) as info:
        command(**fields)
    assert notification_count(app) == before
    return info.value
