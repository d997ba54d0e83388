"""Deterministic IDs (aggregates and events) and the cause recorded on every event."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from a4c_domain import (
    ALL_ORGANIZATIONS,
    Cause,
    caused_by,
    current_cause,
    domain_claim_id,
    event_id,
    invitation_id,
    organization_id,
)
from tests.domain.support import Store, events, org_fields, sqlite_store


def test_ids_are_pinned() -> None:
    """Changing a namespace would re-key every aggregate and event ever stored."""
    assert organization_id("acme") == UUID("f6080b7f-9bd0-5d41-80e9-dd17c8f1193e")
    assert event_id(UUID(int=0), 1) == UUID("eb2a8523-971f-5a55-b0b2-edc8f420a0d1")
    assert invitation_id(UUID(int=0), "a@example.com", 1) == UUID(
        "11b38d06-fe71-5d50-b57f-63dad3f6e7b6"
    )
    assert domain_claim_id("acme.example.com") == UUID("dcdd4b59-b1d7-5c23-a979-4b98db77dd09")
    assert event_id(UUID(int=0), 2) != event_id(UUID(int=0), 1)
    assert invitation_id(UUID(int=0), "a@example.com", 2) != invitation_id(
        UUID(int=0), "a@example.com", 1
    )


def run_scenario(store: Store) -> list[tuple[UUID, str]]:
    app = store.open()
    org = app.register_organization(**org_fields(domain="acme.example.com"))
    app.configure_dns(
        organization_id=org.id, fqdn="acme.example.com", target="lb.example.com", record_id="r"
    )
    inv = app.invite(
        organization_id=org.id, email="a@example.com", role="member", first_name="A", last_name="B"
    )
    app.record_email_sent(
        organization_id=ALL_ORGANIZATIONS, invitation_id=inv.id, token_generation=1, message_id="m"
    )
    return [(e.event_id, type(e).__qualname__) for e in events(app)]


def test_event_ids_follow_aggregate_and_version(store: Store) -> None:
    stored = run_scenario(store)
    # The domain's claim is an aggregate of its own; the invite also lists the
    # invitation on the organization.
    assert len(stored) == 6
    # The same on replay: a fresh app decodes the same IDs from the store.
    replayed = [(e.event_id, type(e).__qualname__) for e in events(store.open())]
    assert replayed == stored
    for e in events(store.open()):
        assert e.event_id == event_id(e.originator_id, e.originator_version)
    assert len({eid for eid, _ in stored}) == len(stored)


def test_event_ids_are_the_same_in_another_store(store: Store, tmp_path: Path) -> None:
    other = sqlite_store(str(tmp_path / "other.sqlite"))
    try:
        assert run_scenario(store) == run_scenario(other)
    finally:
        other.close()


def test_cause_is_recorded_on_every_event(store: Store) -> None:
    app = store.open()
    cause = Cause(workflow_id="bootstrap-acme", run_id="run-1", activity_type="register", attempt=3)
    with caused_by(cause):
        org = app.register_organization(**org_fields())
        app.activate(organization_id=org.id)
    plain = app.invite(
        organization_id=org.id, email="x@example.com", role="member", first_name="X", last_name="Y"
    )
    stored = events(store.open())
    for e in stored[:2]:
        assert e.metadata == {
            "correlation_id": cause.correlation_id,
            "workflow_id": "bootstrap-acme",
            "run_id": "run-1",
            "activity_type": "register",
            "attempt": "3",
        }
    outside = stored[2]
    assert outside.originator_id == plain.id
    assert set(outside.metadata) == {"correlation_id"}
    assert UUID(outside.metadata["correlation_id"])


def test_caused_by_nests_and_restores() -> None:
    outer, inner = Cause(correlation_id="outer"), Cause(correlation_id="inner")
    with caused_by(outer):
        with caused_by(inner):
            assert current_cause() == inner
        assert current_cause() == outer
    assert current_cause().correlation_id not in ("outer", "inner")
