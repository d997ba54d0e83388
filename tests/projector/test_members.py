"""The members read model on both stores: who accepted, scoped by organization.

Members come from domain commands through the projector, like every read model here;
each test checks what the commands did and did not make a member, that one tenant's
query never shows another's, that a rebuild (one batch) equals the live tables (one
event per batch), and that a projection which ran before the table existed gets the
members of invitations accepted back then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from a4c_domain.commands import Role
from a4c_domain.errors import InvalidScope
from a4c_projector.dialects.connection import connect
from a4c_projector.maintenance.rebuild import rebuild
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel.members import backfill_members
from a4c_projector.readmodel.tables import LIVE
from tests.projector.conftest import Store, catch_up_past_gaps


@dataclass
class Tenants:
    store: Store
    acme: UUID
    beta: UUID
    ids: dict[str, UUID]


def accept(app: OnboardingApplication, org: UUID, invitation: UUID, user_id: str) -> Any:
    return app.accept_invitation(
        organization_id=org,
        invitation_id=invitation,
        token=app.invitation_token(invitation, org),
        user_id=user_id,
    )


def invite(app: OnboardingApplication, org: UUID, name: str, role: Role, **extra: Any) -> UUID:
    view = app.invite(
        organization_id=org,
        email=f"{name}@example.com",
        role=role,
        first_name=name.rstrip("0123456789").title(),  # a name holds no digits
        last_name="X",
        **extra,
    )
    return UUID(str(view.id))


def project(store: Store, **kwargs: Any) -> int:
    projector = store.projector(**kwargs)
    try:
        return catch_up_past_gaps(projector)
    finally:
        projector.close()


@pytest.fixture
def tenants(any_store: Store) -> Tenants:
    """acme: alice (owner) and carol (member) accepted, bob revoked, dave pending, erin
    expired; beta: frank (admin) accepted, and alice again, as a member, under the same
    user id."""
    app = any_store.app
    acme = app.register_organization(name="Acme", slug="acme", org_type="provider").id
    beta = app.register_organization(name="Beta", slug="beta", org_type="partner").id
    for org in (acme, beta):
        app.activate(organization_id=org)
    ids = {
        "alice": invite(app, acme, "alice", "owner"),
        "bob": invite(app, acme, "bob", "admin"),
        "carol": invite(app, acme, "carol", "member"),
        "dave": invite(app, acme, "dave", "admin"),
        "erin": invite(
            app, acme, "erin", "admin", expires_at=datetime.now(UTC) + timedelta(seconds=1)
        ),
        "frank": invite(app, beta, "frank", "admin"),
        "alice-beta": invite(app, beta, "alice", "member"),
    }
    accept(app, acme, ids["alice"], "u-alice")
    accept(app, acme, ids["carol"], "u-carol")
    accept(app, beta, ids["frank"], "u-frank")
    accept(app, beta, ids["alice-beta"], "u-alice")
    app.revoke_invitation(organization_id=acme, invitation_id=ids["bob"], reason="left")
    later = OnboardingApplication(any_store.env, clock=lambda: datetime.now(UTC) + timedelta(1))
    try:
        later.expire_invitation(organization_id=acme, invitation_id=ids["erin"])
    finally:
        later.close()
    # A late e-mail outcome after the acceptance moves the invitation on: its member too.
    app.record_email_sent(
        organization_id=acme, invitation_id=ids["alice"], token_generation=1, message_id="late"
    )
    project(any_store, batch_size=1)  # live: one event per batch
    return Tenants(any_store, acme, beta, ids)


@pytest.fixture
def reads(tenants: Tenants) -> Iterator[ReadModel]:
    with ReadModel(tenants.store.location) as read_model:
        yield read_model


def test_an_accepted_invitation_makes_a_member_with_its_fields(
    tenants: Tenants, reads: ReadModel
) -> None:
    invitation = reads.invitation(tenants.ids["alice"], tenants.acme)
    member = reads.member(tenants.acme, "u-alice")
    assert invitation is not None and member is not None
    assert invitation.accepted_at is not None
    assert (
        member.invitation_id,
        member.organization_id,
        member.user_id,
        member.email,
        member.role,
        member.first_name,
        member.last_name,
        member.joined_at,
    ) == (
        tenants.ids["alice"],
        tenants.acme,
        "u-alice",
        "alice@example.com",
        "owner",
        "Alice",
        "X",
        invitation.accepted_at,
    )
    # The e-mail outcome recorded after the acceptance: the member row follows its
    # invitation row (same version, same last event), however the events were batched.
    assert invitation.message_id == "late"
    assert (member.version, member.last_event_id, member.last_position, member.modified_at) == (
        invitation.version,
        invitation.last_event_id,
        invitation.last_position,
        invitation.modified_at,
    )


def test_pending_revoked_and_expired_invitations_make_no_member(
    tenants: Tenants, reads: ReadModel
) -> None:
    statuses = {i.email: i.status for i in reads.invitations(tenants.acme)}
    assert statuses == {
        "alice@example.com": "accepted",
        "bob@example.com": "revoked",
        "carol@example.com": "accepted",
        "dave@example.com": "pending",
        "erin@example.com": "expired",
    }
    assert [m.email for m in reads.members(tenants.acme)] == [
        "alice@example.com",
        "carol@example.com",
    ]


def test_members_by_role_and_the_authorization_question(tenants: Tenants, reads: ReadModel) -> None:
    acme = tenants.acme
    assert [m.user_id for m in reads.members(acme, role="owner")] == ["u-alice"]
    assert [m.user_id for m in reads.members(acme, role="admin")] == []
    assert reads.member(acme, "u-alice", role="owner") is not None
    assert reads.member(acme, "u-alice", role="admin") is None
    assert reads.member(acme, "u-carol", role="member") is not None
    assert reads.member(acme, "u-nobody") is None


def test_scoped_queries_never_show_another_organizations_members(
    tenants: Tenants, reads: ReadModel
) -> None:
    acme, beta = tenants.acme, tenants.beta
    assert {m.organization_id for m in reads.members(acme)} == {acme}
    assert [(m.user_id, m.role) for m in reads.members(beta)] == [
        ("u-frank", "admin"),
        ("u-alice", "member"),
    ]
    # frank is beta's admin: as far as acme is concerned, nobody (as an unknown user).
    assert reads.member(acme, "u-frank") is None
    assert reads.member(acme, "u-frank") == reads.member(acme, "u-nobody")
    assert reads.member(acme, "u-frank", role="admin") is None
    # alice belongs to both: each organization sees its own membership only.
    in_acme, in_beta = reads.member(acme, "u-alice"), reads.member(beta, "u-alice")
    assert in_acme is not None and (in_acme.organization_id, in_acme.role) == (acme, "owner")
    assert in_beta is not None and (in_beta.organization_id, in_beta.role) == (beta, "member")
    assert reads.members(UUID(int=7)) == []  # an organization nobody registered
    # Every tenant only when asked for explicitly.
    assert len(reads.members(ALL_ORGANIZATIONS)) == 4
    assert reads.member(ALL_ORGANIZATIONS, "u-frank") is not None


def test_a_persons_memberships_are_theirs_in_every_organization(
    tenants: Tenants, reads: ReadModel
) -> None:
    """What a person may list (a4c-api's organizations of a caller): their own rows only."""
    alice = reads.memberships("u-alice")
    assert [(m.organization_id, m.role) for m in alice] == [
        (tenants.acme, "owner"),
        (tenants.beta, "member"),
    ]
    assert {m.user_id for m in alice} == {"u-alice"}
    assert [m.organization_id for m in reads.memberships("u-frank")] == [tenants.beta]
    assert reads.memberships("u-nobody") == []


@pytest.mark.parametrize("scope", [None, "acme", str(UUID(int=1))])
def test_members_need_an_explicit_scope(reads: ReadModel, scope: str | None) -> None:
    with pytest.raises(InvalidScope, match="ALL_ORGANIZATIONS"):
        reads.members(scope)  # type: ignore[arg-type]  # the wrong scope is the test
    with pytest.raises(InvalidScope, match="ALL_ORGANIZATIONS"):
        reads.member(scope, "u-alice")  # type: ignore[arg-type]


def test_a_deactivated_organizations_members_stay(tenants: Tenants) -> None:
    """Accepting was a fact: deactivation revokes pending invitations, not members; the
    organization's status says it is deactivated (the caller reads both)."""
    app = tenants.store.app
    done = app.deactivate(organization_id=tenants.acme, reason="closed")
    project(tenants.store)
    with ReadModel(tenants.store.location) as reads:
        reads.wait_until(done.position)
        assert [m.user_id for m in reads.members(tenants.acme)] == ["u-alice", "u-carol"]
        org = reads.organization(tenants.acme)
        assert org is not None and org.status == "deactivated"
        dave = reads.invitation(tenants.ids["dave"], tenants.acme)
        assert dave is not None and dave.status == "revoked"


def test_an_offboarded_organizations_members_stay_and_its_status_says_offboarded(
    tenants: Tenants,
) -> None:
    """Offboarding keeps the members' history too; the row tells it from a bootstrap
    undone by its status (``offboarded``) and carries the reason."""
    app = tenants.store.app
    done = app.offboard(organization_id=tenants.acme, reason="contract ended")
    project(tenants.store)
    with ReadModel(tenants.store.location) as reads:
        reads.wait_until(done.position)
        assert [m.user_id for m in reads.members(tenants.acme)] == ["u-alice", "u-carol"]
        org = reads.organization(tenants.acme)
        assert org is not None
        assert (org.status, org.deactivation_reason, org.failed_step) == (
            "offboarded",
            "contract ended",
            None,
        )
        assert org.deactivated_at is not None
        assert [o.slug for o in reads.organizations(status="offboarded")] == [org.slug]
        dave = reads.invitation(tenants.ids["dave"], tenants.acme)
        assert dave is not None and (dave.status, dave.revoke_reason) == (
            "revoked",
            "organization offboarded",
        )


def test_a_rebuild_equals_the_live_members(tenants: Tenants) -> None:
    store = tenants.store
    live = store.live_rows()
    assert len(live["members"]) == 4
    assert store.rebuilt_rows() == live
    report = rebuild(store.location, store.store.mapper)
    assert report.swapped and report.differences == []
    assert store.live_rows() == live


def test_a_projection_from_before_the_members_table_gets_its_members(tenants: Tenants) -> None:
    """0.2 projections have no members table: the first start of this release creates it
    and derives the members of invitations accepted back then, so a plain rebuild then
    finds nothing to differ (no ``--force``)."""
    store = tenants.store
    expected = store.live_rows()
    with connect(store.location) as db, db.transaction():
        db.execute(f'DROP TABLE "{LIVE.members}"')  # as a 0.2 projection is
    accept(store.app, tenants.acme, tenants.ids["dave"], "u-dave")  # and one more since
    project(store)  # the new release starts
    live = store.live_rows()
    assert {k: v for k, v in live["members"].items() if k in expected["members"]} == expected[
        "members"
    ]
    assert str(tenants.ids["dave"]) in live["members"]
    assert len(live["members"]) == 5
    report = rebuild(store.location, store.store.mapper)
    assert report.swapped and report.differences == []


def test_a_rebuild_of_a_projection_from_before_the_members_table_finds_nothing_to_differ(
    tenants: Tenants,
) -> None:
    """Rebuilt before this release's projector ever started: the rebuild's own start
    derives the live members first, so they equal the rebuilt ones (no ``--force``)."""
    store = tenants.store
    expected = store.live_rows()
    with connect(store.location) as db, db.transaction():
        db.execute(f'DROP TABLE "{LIVE.members}"')  # as a 0.2 projection is
    report = rebuild(store.location, store.store.mapper)
    assert report.swapped and report.differences == []
    assert store.live_rows() == expected


def test_a_big_batch_derives_every_member(any_store: Store) -> None:
    """Enough accepted invitations in one batch for PostgreSQL's staged (COPY) path."""
    app = any_store.app
    org = app.register_organization(name="Big", slug="big", org_type="provider").id
    app.activate(organization_id=org)
    for n in range(80):
        accept(app, org, invite(app, org, f"user{n}", "member"), f"u-{n}")
    project(any_store)
    with ReadModel(any_store.location) as reads:
        members = reads.members(org)
    assert sorted(m.user_id for m in members) == sorted(f"u-{n}" for n in range(80))
    assert any_store.rebuilt_rows() == any_store.live_rows()


@pytest.mark.parametrize("any_store", ["postgres"], indirect=True)
def test_the_backfill_on_up_to_date_members_takes_no_row_lock(tenants: Tenants) -> None:
    """Every ``a4c-projector`` command (``status`` too) and every replica that starts runs
    the members backfill, beside the active replica's batches. On members that are up to
    date it must change nothing and so lock nothing: locking every member row, in its own
    scan order, waited behind a batch writing one and could deadlock with it."""
    store = tenants.store
    before = store.live_rows()["members"]
    with connect(store.location) as batch, batch.transaction():
        # A batch in flight holds one member row's lock until it commits.
        batch.execute(
            f'UPDATE "{LIVE.members}" SET updated_at = updated_at WHERE invitation_id = %s',
            (tenants.ids["carol"],),
        )
        with connect(store.location) as other, other.transaction():
            other.execute("SET LOCAL lock_timeout = '2s'")
            backfill_members(other, LIVE)  # LockNotAvailable when it locks carol's row
    assert store.live_rows()["members"] == before


def test_the_backfill_writes_only_missing_or_older_members(tenants: Tenants) -> None:
    """A member row behind its invitation (or missing) is brought up to date; the others
    are left as they are (their ``updated_at`` tells)."""
    store = tenants.store
    with connect(store.location) as db, db.transaction():
        db.execute(
            f'DELETE FROM "{LIVE.members}" WHERE invitation_id = %s', (tenants.ids["carol"],)
        )
        db.execute(
            f'UPDATE "{LIVE.members}" SET version = version - 1, role = %s '
            "WHERE invitation_id = %s",
            ("member", tenants.ids["frank"]),
        )
        stamps = {
            str(r[0]): r[1]
            for r in db.execute(f'SELECT invitation_id, updated_at FROM "{LIVE.members}"')
        }
    expected = store.rebuilt_rows()["members"]
    with connect(store.location) as db, db.transaction():
        backfill_members(db, LIVE)
        after = {
            str(r[0]): r[1]
            for r in db.execute(f'SELECT invitation_id, updated_at FROM "{LIVE.members}"')
        }
    assert store.live_rows()["members"] == expected
    untouched = set(stamps) - {str(tenants.ids["frank"])}
    assert {k: after[k] for k in untouched} == {k: stamps[k] for k in untouched}
