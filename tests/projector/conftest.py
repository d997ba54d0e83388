"""Projector fixtures: an event store (PostgreSQL schema or SQLite file) plus helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from a4c_domain import OnboardingApplication
from a4c_projector.db import Location
from a4c_projector.projector import Projector
from a4c_projector.store import EventStore, open_event_store
from a4c_projector.tables import TableSet, snapshot_rows
from tests.servers.postgres import postgres_env

SECRET = "s" * 40
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Store:
    env: dict[str, str]
    app: OnboardingApplication
    store: EventStore

    @property
    def location(self) -> Location:
        return self.store.location

    def projector(self, **kwargs: Any) -> Projector:
        return Projector(self.location, self.store.mapper, **kwargs)

    def rebuilt_rows(self, suffix: str = "__check") -> dict[str, Any]:
        """The read model projected from scratch into separate tables."""
        projector = self.projector(projection="check" + suffix, tables=TableSet(suffix))
        try:
            projector.catch_up()
            return snapshot_rows(projector.db, TableSet(suffix))
        finally:
            projector.close()

    def live_rows(self) -> dict[str, Any]:
        with self.location.connect() as db:
            return snapshot_rows(db, TableSet())


def make_pg_store(schema: str, **extra: str) -> Store:
    env = postgres_env(schema, A4C_TOKEN_SECRET=SECRET, **extra)
    return Store(env, OnboardingApplication(env), open_event_store(env))


@pytest.fixture
def pg_store(pg_schema: str) -> Iterator[Store]:
    store = make_pg_store(pg_schema)
    yield store
    store.app.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    env = {"SQLITE_DBNAME": str(tmp_path / "events.sqlite"), "A4C_TOKEN_SECRET": SECRET}
    store = Store(env, OnboardingApplication(env), open_event_store(env))
    yield store
    store.app.close()


def seed(app: OnboardingApplication, count: int, prefix: str = "org") -> list[Any]:
    """``count`` organizations through a few transitions, each with an invitation."""
    views = []
    for n in range(count):
        org = app.register_organization(
            name=f"Org {n}", slug=f"{prefix}-{n}", org_type="provider", tags=[f"t{n % 3}"]
        )
        app.activate(organization_id=org.id)
        inv = app.invite(
            organization_id=org.id,
            email=f"user{n}@example.com",
            role="member",
            first_name="A",
            last_name="B",
        )
        views.append(
            app.record_email_sent(invitation_id=inv.id, token_generation=1, message_id="m")
        )
    return views


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def projector_cli(env: dict[str, str], *args: str, **extra_env: str) -> subprocess.Popen[str]:
    full = {"PATH": os.environ.get("PATH", ""), **env, **extra_env}
    return subprocess.Popen(
        [sys.executable, "-m", "a4c_projector", *args],
        env=full,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 60, **extra: str
) -> tuple[int, str, str]:
    proc = projector_cli(env, *args, **extra)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
