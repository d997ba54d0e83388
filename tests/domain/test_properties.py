"""Property tests: generated command sequences over both aggregates.

For every sequence: after each step the invariants hold; a fresh app on the same store
sees exactly the live state; re-issuing the successful commands adds no events (if the
whole list adds none, each command was a no-op in an unchanged state, so every prefix
adds none either); and the same sequence run into another store yields the same event
IDs and topics.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from a4c_domain import DomainClaim, Organization, organization_id
from a4c_domain.errors import A4CError
from a4c_domain.organization import is_inactive
from a4c_domain.views import InvitationView, OrganizationView
from tests.domain.scenario import Issued, Runner, Step, sequences
from tests.domain.support import (
    FakeClock,
    Store,
    events,
    notification_count,
    sqlite_store,
    without_position,
)
from tests.servers.postgres import fresh_schema, pg_conninfo, postgres_env

TERMINAL = {"Accepted", "Revoked", "Expired"}


def check_view(view: OrganizationView | InvitationView) -> None:
    if isinstance(view, OrganizationView):
        assert view.id == organization_id(view.slug)
        if view.status == "active" and view.domain is not None:
            assert view.dns_status in ("verified", "removed")
        if view.dns_status in ("configured", "verified"):
            assert view.fqdn is not None and view.dns_record_id is not None
        assert is_inactive(view.status) == (view.deactivation_reason is not None)
    else:
        assert view.token_generation >= 1
        assert (view.status == "accepted") == (view.accepted_by is not None)
        assert (view.status == "revoked") == (view.revoke_reason is not None)
        if view.email_status == "sent":
            assert view.message_id is not None and view.email_error is None
        if view.email_status == "failed":
            assert view.email_error is not None


def check_history(stored: list[Any]) -> None:
    """Invariants over each stream, in the order events were stored."""
    streams: dict[uuid.UUID, list[Any]] = {}
    for e in stored:
        streams.setdefault(e.originator_id, []).append(e)
    for stream in streams.values():
        assert [e.originator_version for e in stream] == list(range(1, len(stream) + 1))
        names = [type(e).__name__ for e in stream]
        if isinstance(stream[0], Organization.Registered):
            assert names.count("Registered") == 1
            assert names.count("Activated") <= 1 and names.count("Deactivated") <= 1
            if "Activated" in names and stream[0].domain is not None:
                assert "DNSVerified" in names[: names.index("Activated")]
            ends = [n for n in names if n in ("Deactivated", "Offboarded")]
            assert len(ends) <= 1  # ended once: undone or offboarded, never both
            if ends:
                after = names[names.index(ends[0]) + 1 :]
                assert set(after) <= {"DNSRemoved"}  # only compensation after the end
            if "DNSRemoved" in names:
                assert "DNSConfigured" not in names[names.index("DNSRemoved") :]
        elif isinstance(stream[0], DomainClaim.Claimed):
            assert names == ["Claimed"]  # a claim never changes hands
            owner = streams[stream[0].organization_id]
            taken = {getattr(e, "domain", None) for e in owner} | {
                getattr(e, "fqdn", None) for e in owner
            }
            assert stream[0].fqdn in taken  # the owner took that very domain
        else:
            assert names[0] == "Invited"
            terminal = [n for n in names if n in TERMINAL]
            assert len(terminal) <= 1
            if terminal:
                after = names[names.index(terminal[0]) + 1 :]
                assert "TokenReissued" not in after


def run_sequence(store: Store, sequence: list[Step]) -> list[tuple[str, Issued | None]]:
    clock = FakeClock()
    runner = Runner(store.open(clock), clock)
    issued: list[tuple[str, Issued | None]] = []
    for step in sequence:
        before = notification_count(runner.app)
        outcome, command, view = runner.run(step)
        issued.append((outcome, command))
        added = notification_count(runner.app) - before
        if outcome == "ok":
            assert (view.position is None) == (added == 0)
            current = runner.views()[view.id]
            assert without_position(current) == without_position(view)
        else:
            assert added == 0, (step, outcome)  # a refused command stores nothing
        for current in runner.views().values():
            check_view(current)
    live = {k: without_position(v) for k, v in runner.views().items()}
    reopened = Runner(store.open(clock), clock)
    assert {k: without_position(v) for k, v in reopened.views().items()} == live
    check_history(events(reopened.app))

    count = notification_count(reopened.app)
    for outcome, command in issued:
        if outcome == "ok" and command is not None:
            # A late retry may be refused now (e.g. after deactivation), never applied.
            with contextlib.suppress(A4CError):
                getattr(reopened.app, command.method)(**command.fields)
    assert notification_count(reopened.app) == count
    return issued


def fingerprint(store: Store) -> list[tuple[uuid.UUID, str]]:
    return [(e.event_id, type(e).__qualname__) for e in events(store.open())]


@contextmanager
def temporary_sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        store = sqlite_store(str(Path(tmp) / "events.sqlite"))
        try:
            yield store
        finally:
            store.close()


@contextmanager
def temporary_postgres_store(conninfo: str) -> Iterator[Store]:
    with fresh_schema(conninfo) as schema:
        store = Store("postgres", postgres_env(schema), conninfo=conninfo, schema=schema)
        try:
            yield store
        finally:
            store.close()


def check_replay_is_identical(store: Store, sequence: list[Step]) -> None:
    first = run_sequence(store, sequence)
    with temporary_sqlite_store() as other:
        second = run_sequence(other, sequence)
        assert [o for o, _ in first] == [o for o, _ in second]
        assert fingerprint(store) == fingerprint(other)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sequence=sequences)
def test_sequences_on_sqlite(sequence: list[Step]) -> None:
    with temporary_sqlite_store() as store:
        check_replay_is_identical(store, sequence)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sequence=sequences)
def test_sequences_on_postgres(pg_server: str, sequence: list[Step]) -> None:
    with temporary_postgres_store(pg_conninfo()) as store:
        check_replay_is_identical(store, sequence)
