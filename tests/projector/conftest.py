"""Projector fixtures: an event store (PostgreSQL schema or SQLite file) plus helpers."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from prometheus_client.parser import text_string_to_metric_families

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, Organization
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.source import head
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.maintenance.audit import audit
from a4c_projector.maintenance.compare import snapshot_rows
from a4c_projector.readmodel.tables import TableSet
from a4c_projector.readmodel.tracking import read_position
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET, wait_for

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
            catch_up_past_gaps(projector)
            return snapshot_rows(projector.db, TableSet(suffix))
        finally:
            projector.close()

    def live_rows(self) -> dict[str, Any]:
        with connect(self.location) as db:
            return snapshot_rows(db, TableSet())


def catch_up_past_gaps(projector: Projector) -> int:
    """Apply everything committed, waiting out id gaps left by rolled-back inserts.

    ``Projector.catch_up`` stops at a gap the guard has not yet proven permanent (a
    lost race or a duplicate command consumes an id and rolls back); the guard passes
    it once its grace has run out, so keep asking until nothing is held back.
    """
    while True:
        result = projector.run_batch()
        if result.size == 0 and not result.blocked:
            return result.position
        if result.size == 0:
            time.sleep(0.05)


def make_pg_store(schema: str, **extra: str) -> Store:
    env = postgres_env(schema, A4C_TOKEN_SECRET=TOKEN_SECRET, **extra)
    return Store(env, OnboardingApplication(env), open_event_store(env))


@pytest.fixture
def pg_store(pg_schema: str) -> Iterator[Store]:
    store = make_pg_store(pg_schema)
    yield store
    store.app.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    env = {"SQLITE_DBNAME": str(tmp_path / "events.sqlite"), "A4C_TOKEN_SECRET": TOKEN_SECRET}
    store = Store(env, OnboardingApplication(env), open_event_store(env))
    yield store
    store.app.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    yield request.getfixturevalue("sqlite_store" if request.param == "sqlite" else "pg_store")


def seed(app: OnboardingApplication, count: int, prefix: str = "org") -> list[Any]:
    """``count`` organizations through a few transitions, each with an invitation: five
    events each (registered, activated, invited, invitation listed, e-mail sent)."""
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
            app.record_email_sent(
                organization_id=ALL_ORGANIZATIONS,
                invitation_id=inv.id,
                token_generation=1,
                message_id="m",
            )
        )
    return views


def projector_cli(env: dict[str, str], *args: str, **extra_env: str) -> subprocess.Popen[str]:
    # PYTHONPATH passed on: the daemon runs the code under test (a checkout other than
    # the one installed in the environment, e.g. a clone sharing a venv), not the installed one.
    inherited = {name: os.environ.get(name, "") for name in ("PATH", "PYTHONPATH")}
    full = {**inherited, **env, **extra_env}
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


# --- bulk data, poison events ------------------------------------------------------------


def bulk_organizations(store: Store, count: int, prefix: str = "bulk") -> int:
    """``count`` organizations of 4 real domain events each, saved in one transaction.

    Much faster than a command per event, for backlogs of thousands; returns the number
    of events written.
    """
    orgs = []
    for n in range(count):
        org = Organization(
            name=f"Bulk {n}",
            slug=f"{prefix}-{n}",
            org_type="partner",
            parent_id=None,
            tags=[f"t{n % 3}"],
            domain=f"{prefix}-{n}.example.com",
        )
        org.configure_dns(f"{prefix}-{n}.example.com", "lb.example.com", f"r{n}")
        org.verify_dns()
        org.activate()
        orgs.append(org)
    store.app.save(*orgs)
    return 4 * count


@dataclass(frozen=True)
class Poison:
    """An organization whose DNSConfigured event (version 2) lacks ``fqdn``.

    The stored payload decodes (eventsourcing builds the event from whatever state it
    finds) but the projector's handler reads ``event.fqdn`` and fails: what an event
    written by a buggy or newer producer looks like to this projector. ``repair()``
    writes back the payload the domain produced, which is how the cause gets fixed.
    """

    organization_id: UUID
    good_state: bytes
    events: int = 4  # Registered, DNSConfigured (poison), DNSVerified, Activated

    def repair(self, store: Store) -> None:
        with connect(store.location) as db, db.transaction():
            # eventsourcing's SQLite recorder keeps ids as 32 hex digits
            key = self.organization_id if db.dialect == "postgres" else self.organization_id.hex
            repaired = db.execute(
                f"UPDATE {db.location.qualified_events_table} SET state = %s "
                "WHERE originator_id = %s AND originator_version = 2 RETURNING 1",
                (self.good_state, key),
            )
            assert repaired == [(1,)], "the poisoned event was not found"


def write_poison(store: Store, slug: str = "poisoned") -> Poison:
    org = Organization(
        name="Poisoned", slug=slug, org_type="partner", parent_id=None, tags=[], domain=None
    )
    org.configure_dns(f"{slug}.example.com", "lb.example.com", "r-poison")
    org.verify_dns()
    org.activate()
    mapper = store.store.mapper
    stored = [mapper.to_stored_event(e) for e in org.collect_events()]
    good = stored[1].state
    state = mapper.transcoder.decode(good)
    del state["fqdn"]
    stored[1] = StoredEvent(
        originator_id=stored[1].originator_id,
        originator_version=stored[1].originator_version,
        topic=stored[1].topic,
        state=mapper.transcoder.encode(state),
    )
    store.app.recorder.insert_events(stored)
    return Poison(org.id, good)


# --- the daemon as a subprocess, and its probes ---------------------------------------


PROBES_LINE = re.compile(r"probes on http://[^:\s]+:(\d+)")


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def parse_metrics(text: str) -> dict[str, float]:
    """Sample name (with labels, sorted) -> value, from Prometheus text."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return samples


class DaemonProcess:
    """A daemon's ``run`` in its own process (``proc``, its pipes text), with its probes on
    a port it chose: ``a4c-projector``'s (:class:`Daemon`), ``a4c-webhooks``'.

    The daemon binds port 0 and logs the port it got: a port picked by the test and
    bound later by the daemon can be taken meanwhile (by any outgoing connection on the
    machine, or another suite's daemon, which would then answer this test's probes).
    Its stderr is drained all along, so a chatty daemon never blocks on a full pipe,
    and a daemon that died says so (with its stderr) instead of a probe timing out.
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._drains = [
            threading.Thread(target=self._drain, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stderr, self._lines), (self.proc.stdout, []))
        ]
        for drain in self._drains:
            drain.start()
        self._port: int | None = None

    @staticmethod
    def _drain(stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._lines)

    @property
    def port(self) -> int:
        """The probes' port, from the daemon's "probes on http://host:port" log line."""
        deadline = time.monotonic() + 60
        while self._port is None:
            found = PROBES_LINE.search(self.stderr)
            if found:
                self._port = int(found.group(1))
                break
            self.assert_alive()
            assert time.monotonic() < deadline, f"no probes port logged:\n{self.stderr}"
            time.sleep(0.02)
        return self._port

    def assert_alive(self) -> None:
        code = self.proc.poll()
        assert code is None, f"the daemon exited ({code}):\n{self.stderr}"

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        self.assert_alive()
        status, body = http_get(self.port, path)
        return status, (json.loads(body) if status in (200, 503) else {})

    def metrics(self) -> dict[str, float]:
        status, body = http_get(self.port, "/metrics")
        return parse_metrics(body) if status == 200 else {}

    def wait_serving(self, timeout: float = 30) -> None:
        wait_for(lambda: self.get("/health")[0] == 200, timeout, "the daemon's /health")

    def wait(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for the daemon to exit by itself: its exit code and stderr."""
        code = self.proc.wait(timeout)
        for drain in self._drains:
            drain.join(10)
        return code, self.stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20) -> tuple[int, str]:
        """SIGTERM; the exit code and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self.wait(10)


class Daemon(DaemonProcess):
    """``a4c-projector run``, polling every 0.1 s."""

    def __init__(self, env: dict[str, str], *args: str, **extra: str) -> None:
        settings = {"PROJECTOR_HTTP_PORT": "0", "PROJECTOR_POLL_INTERVAL": "0.1"}
        super().__init__(projector_cli(env, "run", *args, **{**settings, **extra}))


def tracked_position(store: Store, projection: str = "a4c") -> int:
    """The projection's position; 0 before the daemon has created its tables."""
    with connect(store.location) as db:
        try:
            with db.transaction():
                return read_position(db, projection)
        except (psycopg.errors.UndefinedTable, sqlite3.OperationalError):
            return 0


def store_head(store: Store) -> int:
    with connect(store.location) as db, db.transaction():
        return head(db)


def assert_complete(store: Store) -> None:
    """The live model is at the head, equals a rebuild from scratch, and audits clean."""
    assert tracked_position(store) == store_head(store)
    assert store.live_rows() == store.rebuilt_rows()
    with connect(store.location) as db:
        report = audit(db, "a4c")
    assert report.complete, report.missing
    assert report.applied + report.parked == report.checked == store_head(store)
