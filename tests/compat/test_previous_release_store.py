"""An event store written by the previous release (0.2.0) loads, projects and takes new
commands with the current code.

The fixture (``v0.2.0/events.sqlite``; ``deployed.sqlite``: the same events with the read
models 0.2.0's projector kept beside them) and what 0.2.0 itself said about it
(``v0.2.0/manifest.json``) were written by ``v0.2.0/write_store.py`` running release 0.2.0;
each test works on a copy, never on the committed file. Persisted names are what this
guards: a moved or renamed event class leaves stored topics that no longer resolve.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic, resolve_topic

from a4c_domain import (
    ALL_ORGANIZATIONS,
    DomainClaim,
    Invitation,
    OnboardingApplication,
    Organization,
    OrganizationScope,
    event_id,
    invitation_id,
    organization_id,
)
from a4c_domain.base import DomainAggregate
from a4c_domain.claim_backfill import ClaimSummary, backfill_domain_claims
from a4c_domain.errors import DomainTaken, OrganizationInactive
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.maintenance.audit import audit
from a4c_projector.maintenance.rebuild import rebuild
from a4c_projector.queries import ReadModel

FIXTURE = Path(__file__).resolve().parent / "v0.2.0"
MANIFEST: dict[str, Any] = json.loads((FIXTURE / "manifest.json").read_text())
SECRET: str = MANIFEST["token_secret"]
# Event classes added after 0.2.0: the only current topics its store cannot hold.
NEW_SINCE = {
    "a4c_domain.claims:DomainClaim.Claimed",
    "a4c_domain.organization:Organization.InvitationIssued",
    "a4c_domain.organization:Organization.EmailSent",
    "a4c_domain.organization:Organization.Offboarded",
}

ACME, ACME_EU, GLOBEX, INITECH, HOOLI, PIPER, UMBRELLA = (
    organization_id(s)
    for s in ("acme", "acme-eu", "globex", "initech", "hooli", "pied-piper", "umbrella")
)


def invited(org: UUID, email: str, generation: int = 1) -> UUID:
    return invitation_id(org, email, generation)


ADA, GRACE, BOB, EVE = (invited(ACME, f"{n}@example.com") for n in ("ada", "grace", "bob", "eve"))
DAVE_1, DAVE_2 = (invited(ACME_EU, "dave@example.com", g) for g in (1, 2))
HEIDI = invited(ACME_EU, "heidi@example.com")
FRANK = invited(GLOBEX, "frank@globex.example.org")


class Clock:
    """After the scenario's last command (it ran on 2030-01-01 from 12:00)."""

    now = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class OldStore:
    app: OnboardingApplication
    events: EventStore

    def notifications(self) -> list[Notification]:
        return list(self.app.recorder.select_notifications(start=1, limit=10_000))

    def decode(self, notification: Notification) -> DomainAggregate.Event:
        event = self.app.mapper.to_domain_event(notification)
        assert isinstance(event, DomainAggregate.Event)
        return event

    def projector(self) -> Projector:
        return Projector(self.events.location, self.events.mapper)

    def read_model(self) -> ReadModel:
        return ReadModel(self.events.location)


def open_copy(tmp_path: Path, name: str) -> Iterator[OldStore]:
    copy = tmp_path / name
    shutil.copyfile(FIXTURE / name, copy)
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(copy)}
    app = OnboardingApplication(env, token_secret=SECRET, clock=Clock())
    yield OldStore(app, open_event_store(env))
    app.close()


@pytest.fixture
def old_store(tmp_path: Path) -> Iterator[OldStore]:
    """The event store alone."""
    yield from open_copy(tmp_path, "events.sqlite")


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[OldStore]:
    """The same events with the read models 0.2.0's projector kept beside them."""
    yield from open_copy(tmp_path, "deployed.sqlite")


def members_of(reads: ReadModel, scope: OrganizationScope) -> list[tuple[UUID, str, str, str]]:
    return [(m.organization_id, m.user_id, m.role, m.first_name) for m in reads.members(scope)]


def token(invitation: UUID, generation: int) -> str:
    """The token 0.2.0 mailed: HMAC-SHA256(secret, id|generation), base64url unpadded."""
    digest = hmac.new(SECRET.encode(), f"{invitation}|{generation}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def test_every_stored_topic_is_a_current_event_class(old_store: OldStore) -> None:
    stored = {n.topic for n in old_store.notifications()}
    for topic in stored:
        cls = resolve_topic(topic)
        # The class's own topic, not an alias: the module path did not move.
        assert get_topic(cls) == topic
        assert issubclass(cls, Aggregate.Event)
    current = {
        get_topic(member)
        for aggregate in (Organization, Invitation, DomainClaim)
        for name, member in vars(aggregate).items()
        # eventsourcing gives each aggregate its own Event and Created bases: never stored.
        if isinstance(member, type) and issubclass(member, Aggregate.Event)
        and name not in ("Event", "Created")
    }  # fmt: skip
    # The scenario used every event class 0.2.0 had; each is still there, nothing else new.
    assert current - stored == NEW_SINCE
    assert stored <= current


def test_events_decode_with_the_ids_0_2_0_computed(old_store: OldStore) -> None:
    notifications = old_store.notifications()
    recorded = MANIFEST["events"]
    assert [(n.id, n.topic) for n in notifications] == [
        (e["notification_id"], e["topic"]) for e in recorded
    ]
    for n, e in zip(notifications, recorded, strict=True):
        decoded = old_store.decode(n)
        assert get_topic(type(decoded)) == n.topic
        assert str(decoded.originator_id) == e["originator_id"]
        assert decoded.event_id == event_id(UUID(str(n.originator_id)), n.originator_version)
        assert str(decoded.event_id) == e["event_id"]
    first = old_store.decode(notifications[0])
    assert first.metadata == {
        "correlation_id": "org-bootstrap-acme/register_organization/1",
        "workflow_id": "org-bootstrap-acme",
        "run_id": "00000000-0000-4000-8000-000000000001",
        "activity_type": "register_organization",
        "attempt": "1",
    }
    assert first.timestamp == datetime(2030, 1, 1, 12, 0, 1, tzinfo=UTC)


def test_every_aggregate_loads_as_0_2_0_left_it(old_store: OldStore) -> None:
    app = old_store.app
    for key, then in MANIFEST["views"].items():
        aggregate = UUID(key)
        if "slug" in then:
            now = app.get_organization(aggregate).model_dump(mode="json")
        else:
            now = app.get_invitation(aggregate, ALL_ORGANIZATIONS).model_dump(mode="json")
        assert {k: now[k] for k in then} == then, key

    acme = app.get_organization(ACME)
    assert (acme.status, acme.dns_status, acme.fqdn, acme.domain, acme.tags, acme.version) == (
        "active", "verified", "acme.example.com", "acme.example.com", ("eu", "gold"), 4
    )  # fmt: skip
    eu = app.get_organization(ACME_EU)
    assert (eu.parent_id, eu.status, eu.tags, eu.domain) == (ACME, "active", ("eu",), None)
    globex = app.get_organization(GLOBEX)
    assert (globex.status, globex.dns_status, globex.deactivation_reason, globex.failed_step) == (
        "deactivated", "removed", "welcome e-mail bounced", "invite"
    )  # fmt: skip
    initech = app.get_organization(INITECH)
    assert (initech.status, initech.dns_status, initech.fqdn) == (
        "registered", "configured", "initech.orgs.a4c.example"
    )  # fmt: skip
    assert app.get_organization(PIPER).fqdn == app.get_organization(HOOLI).domain

    states = {
        name: app.get_invitation(inv, ALL_ORGANIZATIONS)
        for name, inv in [("ada", ADA), ("grace", GRACE), ("bob", BOB), ("eve", EVE),
                          ("dave1", DAVE_1), ("dave2", DAVE_2), ("heidi", HEIDI), ("frank", FRANK)]
    }  # fmt: skip
    assert {n: (v.status, v.email_status, v.token_generation) for n, v in states.items()} == {
        "ada": ("accepted", "sent", 1),
        "grace": ("pending", "sent", 2),
        "bob": ("revoked", "sent", 1),
        "eve": ("expired", "not_sent", 1),
        "dave1": ("pending", "not_sent", 1),
        "dave2": ("pending", "not_sent", 1),
        "heidi": ("pending", "failed", 1),
        "frank": ("pending", "not_sent", 1),
    }
    assert states["ada"].accepted_by == "user-ada"
    assert states["bob"].revoke_reason == "left the company"
    assert states["grace"].message_id == "msg-grace-2"
    assert states["heidi"].email_error == "connection refused"
    # Scoped as 0.3.0 scopes: acme sees its own invitation, not globex's.
    assert app.get_invitation(ADA, ACME).email == "ada@example.com"
    assert app.invitation_token(GRACE, ACME) == token(GRACE, 2)


def test_a_v1_registration_in_the_old_store_is_upcast(old_store: OldStore) -> None:
    umbrella = old_store.app.get_organization(UMBRELLA)
    assert (umbrella.name, umbrella.tags, umbrella.domain, umbrella.status) == (
        "Umbrella Corp", (), None, "registered"
    )  # fmt: skip
    (row,) = [n for n in old_store.notifications() if n.originator_id == UMBRELLA]
    assert b"class_version" not in row.state and b"tags" not in row.state
    registered = old_store.decode(row)
    assert isinstance(registered, Organization.Registered)
    assert (registered.tags, registered.domain) == ([], None)


def test_the_projector_catches_up_from_scratch_and_a_rebuild_agrees(old_store: OldStore) -> None:
    last = MANIFEST["events"][-1]["notification_id"]
    projector = old_store.projector()
    try:
        assert projector.catch_up() == last
        report = audit(projector.db, projector.projection)
    finally:
        projector.close()
    assert report.complete and (report.applied, report.parked) == (last, 0)

    with old_store.read_model() as reads:
        orgs = {o.slug: o for o in reads.organizations()}
        assert set(orgs) == {
            "acme", "acme-eu", "globex", "initech", "hooli", "pied-piper", "umbrella"
        }  # fmt: skip
        assert [o.slug for o in reads.organizations(tag="eu")] == ["acme", "acme-eu"]
        assert [o.slug for o in reads.organizations(status="deactivated")] == ["globex"]
        globex = orgs["globex"]
        assert (globex.dns_status, globex.failed_step, globex.version) == ("removed", "invite", 5)
        assert globex.deactivated_at == datetime(2030, 1, 1, 12, 0, 13, tzinfo=UTC)
        assert orgs["umbrella"].tags == () and orgs["acme"].tags == ("eu", "gold")
        for org in orgs.values():
            assert org.last_event_id == event_id(org.id, org.version)
        acme_invitations = reads.invitations(ACME)
        assert [(i.email, i.status) for i in acme_invitations] == [
            ("ada@example.com", "accepted"),
            ("bob@example.com", "revoked"),
            ("eve@example.com", "expired"),
            ("grace@example.com", "pending"),
        ]
        assert [i.email for i in reads.invitations(ACME_EU, status="pending")] == [
            "dave@example.com", "dave@example.com", "heidi@example.com"
        ]  # fmt: skip
        assert len(reads.invitations(ALL_ORGANIZATIONS)) == 8
        assert reads.invitation(FRANK, ACME) is None  # another tenant's: not found
        found = reads.invitation_by_token(token(GRACE, 2))
        assert found is not None and found.id == GRACE
        assert reads.invitation_by_token(token(GRACE, 1)) is None  # the reissued-away link
        superseded = reads.token_match(token(GRACE, 1))  # known, but not current
        assert superseded is not None
        assert (superseded.invitation.id, superseded.current) == (GRACE, False)
        # 0.2.0 had no members read model: its one accepted invitation is a member now.
        assert members_of(reads, ALL_ORGANIZATIONS) == [(ACME, "user-ada", "admin", "Ada")]
        assert reads.member(GLOBEX, "user-ada") is None  # another tenant's: not found

    result = rebuild(old_store.events.location, old_store.events.mapper)
    assert (result.events, result.differences, result.swapped) == (last, [], True)


def test_new_commands_work_on_the_old_store(old_store: OldStore) -> None:
    app = old_store.app
    accepted = app.accept_invitation(
        organization_id=ACME, invitation_id=GRACE, token=token(GRACE, 2), user_id="user-grace"
    )
    assert (accepted.status, accepted.accepted_by, accepted.version) == (
        "accepted",
        "user-grace",
        5,
    )
    # Issued before 0.3.0 recorded invitations on the organization: still refused once
    # the organization is deactivated (README, "Deactivation ends invitations").
    with pytest.raises(OrganizationInactive):
        app.accept_invitation(
            organization_id=GLOBEX, invitation_id=FRANK, token=token(FRANK, 1), user_id="u-f"
        )

    # Deactivating an old organization: its 0.2.0 invitations are not listed on it, so
    # they stay pending (README), and accepting one is refused all the same.
    assert app.deactivate(organization_id=ACME_EU, reason="merged").status == "deactivated"
    assert app.get_invitation(HEIDI, ACME_EU).status == "pending"
    with pytest.raises(OrganizationInactive):
        app.accept_invitation(
            organization_id=ACME_EU, invitation_id=DAVE_2, token=token(DAVE_2, 1), user_id="u-d"
        )

    # Old domains have no claim until the backfill gives each to its first taker.
    assert app.domain_owner("acme.example.com") is None
    outcomes = list(backfill_domain_claims(app))
    assert [(o.slug, o.fqdn, o.outcome, o.owner_slug) for o in outcomes] == [
        ("acme", "acme.example.com", "claimed", None),
        ("globex", "globex.example.org", "claimed", None),
        ("initech", "initech.orgs.a4c.example", "claimed", None),
        ("hooli", "shared.example.net", "claimed", None),
        ("pied-piper", "shared.example.net", "conflict", "hooli"),
    ]
    again = ClaimSummary.of(backfill_domain_claims(app))
    assert (again.claimed, again.already_held, again.conflicts) == (0, 4, 1)
    assert app.domain_owner("ACME.example.com") == ACME
    assert app.domain_owner("globex.example.org") == GLOBEX  # deactivated keeps it
    with pytest.raises(DomainTaken):
        app.register_organization(
            name="Copycat", slug="copycat", org_type="partner", domain="acme.example.com"
        )

    newco = app.register_organization(
        name="NewCo", slug="newco", org_type="provider", parent_id=ACME, domain="newco.example"
    )
    invite = app.invite(
        organization_id=newco.id,
        email="nina@example.com",
        role="admin",
        first_name="Nina",
        last_name="New",
    )
    assert app.domain_owner("newco.example") == newco.id

    projector = old_store.projector()
    try:
        projector.catch_up()
        assert audit(projector.db, projector.projection).complete
    finally:
        projector.close()
    with old_store.read_model() as reads:
        grace = reads.invitation(GRACE, ACME)
        assert grace is not None and grace.status == "accepted"
        member = reads.member(ACME, "user-grace", role="member")
        assert member is not None and member.joined_at == grace.accepted_at
        # (By when they joined: the fixture's events are dated 2030, grace's today.)
        assert sorted(members_of(reads, ACME)) == [
            (ACME, "user-ada", "admin", "Ada"),
            (ACME, "user-grace", "member", "Grace"),
        ]
        record = reads.organization_by_slug("newco")
        assert record is not None and record.parent_id == ACME
        assert [i.id for i in reads.invitations(newco.id)] == [invite.id]


def test_the_projector_takes_over_the_read_models_0_2_0_kept(deployed: OldStore) -> None:
    last = MANIFEST["events"][-1]["notification_id"]
    with deployed.read_model() as reads:  # 0.2.0's tables, as 0.2.0 left them
        assert reads.position() == last
        acme = reads.organization_by_slug("acme")
        assert acme is not None and acme.tags == ("eu", "gold")
    with connect(deployed.events.location) as db:
        assert not db.table_exists("members")  # 0.2.0 kept no members
    projector = deployed.projector()
    try:
        assert projector.catch_up() == last  # nothing missed, nothing applied twice
        assert audit(projector.db, projector.projection).complete
        # Starting created the members table and derived the members of invitations
        # accepted under 0.2.0 (README, "Upgrading to 0.3.0"): no event was replayed.
        with deployed.read_model() as reads:
            assert members_of(reads, ACME) == [(ACME, "user-ada", "admin", "Ada")]
            # and wrote every token generation issued under 0.2.0, read from its events.
            old, new = reads.token_match(token(GRACE, 1)), reads.token_match(token(GRACE, 2))
            assert old is not None and new is not None
            assert (old.current, new.current) == (False, True)
        app = deployed.app
        app.accept_invitation(
            organization_id=ACME, invitation_id=GRACE, token=token(GRACE, 2), user_id="user-g"
        )
        repeated = app.deactivate(
            organization_id=GLOBEX, reason="welcome e-mail bounced", failed_step="invite"
        )
        assert repeated.position is None  # the saga's retry on an old aggregate: a no-op
        list(backfill_domain_claims(app))
        newco = app.register_organization(name="NewCo", slug="newco", org_type="partner")
        assert projector.catch_up() > last
        report = audit(projector.db, projector.projection)
        assert report.complete and report.parked == 0
    finally:
        projector.close()
    with deployed.read_model() as reads:
        grace = reads.invitation(GRACE, ACME)
        assert grace is not None and (grace.status, grace.accepted_by) == ("accepted", "user-g")
        assert sorted(m.user_id for m in reads.members(ACME)) == ["user-ada", "user-g"]
        assert reads.members(GLOBEX) == []
        assert [o.slug for o in reads.organizations(tag="eu")] == ["acme", "acme-eu"]
        assert reads.organization(newco.id) is not None
    # The rows 0.2.0 wrote, carried on by the current projector, are what the current
    # projector makes of the whole log from scratch.
    result = rebuild(deployed.events.location, deployed.events.mapper)
    assert (result.differences, result.swapped) == ([], True)
