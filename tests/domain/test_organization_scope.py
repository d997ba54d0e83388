"""Organization scope: a deactivated organization's invitations end, one tenant's caller
cannot reach another's invitations, and a new generation supersedes the old one."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from a4c_domain import ALL_ORGANIZATIONS, Invitation, OnboardingApplication, Organization
from a4c_domain.errors import (
    InvalidCommand,
    InvalidScope,
    InvitationConflict,
    InvitationNotFound,
    InvitationRevoked,
    OrganizationInactive,
)
from a4c_domain.invitation import ORGANIZATION_DEACTIVATED
from a4c_domain.views import InvitationView, OrganizationView
from tests.domain.support import (
    Invitee,
    assert_noop,
    assert_refused,
    events,
    notifications,
    org_fields,
)

PEOPLE: list[Invitee] = [
    {"email": f"{name}@example.com", "role": "member", "first_name": name, "last_name": "X"}
    for name in ("ann", "bob", "cid", "dee")
]


@pytest.fixture
def acme(app: OnboardingApplication) -> OrganizationView:
    return app.register_organization(**org_fields())


@pytest.fixture
def other(app: OnboardingApplication) -> OrganizationView:
    return app.register_organization(**org_fields(slug="other", name="Other Inc"))


def _invite(app: OnboardingApplication, org: OrganizationView, n: int) -> InvitationView:
    return app.invite(organization_id=org.id, **PEOPLE[n])


def _accept(app: OnboardingApplication, inv: InvitationView, **scope: Any) -> InvitationView:
    fields = {"organization_id": inv.organization_id, **scope}
    token = app.invitation_token(inv.id, ALL_ORGANIZATIONS)
    return app.accept_invitation(invitation_id=inv.id, token=token, user_id="u", **fields)


# --- deactivation ends the organization's invitations ---------------------------------


def test_deactivation_revokes_pending_invitations_and_accept_is_refused(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    pending = [_invite(app, acme, 0), _invite(app, acme, 1)]
    accepted = _accept(app, _invite(app, acme, 2))
    earlier = app.revoke_invitation(
        organization_id=acme.id, invitation_id=_invite(app, acme, 3).id, reason="left"
    )
    before = len(notifications(app))

    deactivated = app.deactivate(organization_id=acme.id, reason="bootstrap failed")

    written = events(app)[before:]
    # One save: the organization's event and one revocation per pending invitation.
    assert [type(e) for e in written] == [
        Organization.Deactivated,
        Invitation.Revoked,
        Invitation.Revoked,
    ]
    assert deactivated.position == notifications(app)[-1].id
    for inv in pending:
        view = app.get_invitation(inv.id, acme.id)
        assert (view.status, view.revoke_reason) == ("revoked", ORGANIZATION_DEACTIVATED)
        error = assert_refused(app, OrganizationInactive, functools.partial(_accept, app, inv))
        assert str(inv.id) in str(error)
    # What had ended before keeps its own ending.
    assert app.get_invitation(accepted.id, acme.id).status == "accepted"
    assert app.get_invitation(earlier.id, acme.id).revoke_reason == "left"


def test_deactivation_is_idempotent_with_the_sagas_own_revocation(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    """The bootstrap saga revokes its invitations as a compensation step too: before or
    after the deactivation, neither errors nor writes a second Revoked event."""
    revoked_first = _invite(app, acme, 0)
    revoked_after = _invite(app, acme, 1)
    app.revoke_invitation(
        organization_id=acme.id, invitation_id=revoked_first.id, reason="bootstrap failed"
    )
    done = app.deactivate(organization_id=acme.id, reason="bootstrap failed")
    assert_noop(app, app.deactivate, done, organization_id=acme.id, reason="bootstrap failed")
    for inv in (revoked_first, revoked_after):
        assert_noop(
            app,
            app.revoke_invitation,
            app.get_invitation(inv.id, acme.id),
            organization_id=acme.id,
            invitation_id=inv.id,
            reason="bootstrap failed",
        )
    revoked = [e for e in events(app) if isinstance(e, Invitation.Revoked)]
    assert sorted(e.originator_id for e in revoked) == sorted([revoked_first.id, revoked_after.id])


def test_a_deactivated_organization_takes_no_new_invitation(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    app.deactivate(organization_id=acme.id, reason="gone")
    assert_refused(app, OrganizationInactive, app.invite, organization_id=acme.id, **PEOPLE[0])


def test_accept_racing_a_deactivation_loses(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    """Accept decided on an active organization; the deactivation commits first (revoking
    the invitation): accept's save loses, decides again and is refused."""
    inv = _invite(app, acme, 0)
    real_load = app._load
    raced: list[bool] = []

    def load_then_deactivate(aggregate_id: UUID, kind: Any) -> Any:
        loaded = real_load(aggregate_id, kind)
        if kind is Organization and not raced:  # accept has just read the organization
            raced.append(True)
            app.deactivate(organization_id=acme.id, reason="raced")
        return loaded

    app._load = load_then_deactivate  # type: ignore[method-assign]  # a spy on the load
    with pytest.raises(OrganizationInactive):
        _accept(app, inv)
    assert raced
    assert app.get_invitation(inv.id, acme.id).status == "revoked"


def test_invite_racing_a_deactivation_is_refused(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    """The invitation is saved with the organization's event: an invite that read the
    organization before a deactivation committed loses the save and is refused."""
    real_load = app._load
    raced: list[bool] = []

    def load_then_deactivate(aggregate_id: UUID, kind: Any) -> Any:
        loaded = real_load(aggregate_id, kind)
        if kind is Invitation and not raced:  # invite has read the organization already
            raced.append(True)
            app.deactivate(organization_id=acme.id, reason="raced")
        return loaded

    app._load = load_then_deactivate  # type: ignore[method-assign]  # a spy on the load
    with pytest.raises(OrganizationInactive):
        _invite(app, acme, 0)
    assert raced
    assert not [e for e in events(app) if isinstance(e, Invitation.Invited)]


# --- one tenant's caller cannot reach another's invitations ---------------------------


COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("record_email_sent", {"token_generation": 1, "message_id": "m"}),
    ("record_email_failed", {"token_generation": 1, "reason": "r"}),
    ("reissue_token", {"token_generation": 2}),
    ("accept_invitation", {"user_id": "u"}),
    ("revoke_invitation", {"reason": "r"}),
    ("expire_invitation", {}),
]


def _refusal(call: Callable[[], object]) -> InvitationNotFound:
    with pytest.raises(InvitationNotFound) as info:
        call()
    return info.value


@pytest.mark.parametrize(("command", "fields"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_another_tenants_invitation_is_not_found(
    app: OnboardingApplication,
    acme: OrganizationView,
    other: OrganizationView,
    command: str,
    fields: dict[str, Any],
) -> None:
    """Asked by ``other``, acme's invitation gives the very error an id nobody issued
    gives (type and text), and nothing is written."""
    inv_id = Invitation.create_id(acme.id, "ann@example.com", 1)
    token = app.tokens.token(inv_id, 1)
    if command == "accept_invitation":
        fields = {**fields, "token": token}
    run = getattr(app, command)

    def attempt() -> object:
        return run(organization_id=other.id, invitation_id=inv_id, **fields)

    unknown = _refusal(attempt)  # not issued yet: truly unknown
    _invite(app, acme, 0)
    before = len(notifications(app))
    cross = _refusal(attempt)
    assert (type(cross), str(cross), cross.args) == (type(unknown), str(unknown), unknown.args)
    assert len(notifications(app)) == before
    # The owner's scope (and the platform's) reach it.
    assert app.get_invitation(inv_id, acme.id).status == "pending"
    assert app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "pending"


def test_another_tenants_invitation_cannot_be_read(
    app: OnboardingApplication, acme: OrganizationView, other: OrganizationView
) -> None:
    inv_id = Invitation.create_id(acme.id, "ann@example.com", 1)
    unknown = _refusal(lambda: app.get_invitation(inv_id, other.id))
    unknown_token = _refusal(lambda: app.invitation_token(inv_id, other.id))
    _invite(app, acme, 0)
    cross = _refusal(lambda: app.get_invitation(inv_id, other.id))
    cross_token = _refusal(lambda: app.invitation_token(inv_id, other.id))
    assert (type(cross), str(cross)) == (type(unknown), str(unknown))
    assert (type(cross_token), str(cross_token)) == (type(unknown_token), str(unknown_token))


def test_the_scope_is_required_and_only_a_uuid_or_the_sentinel(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    inv = _invite(app, acme, 0)
    missing = assert_refused(
        app, InvalidCommand, app.revoke_invitation, invitation_id=inv.id, reason="x"
    )
    assert isinstance(missing, InvalidCommand) and missing.fields == ["organization_id"]
    for text in ("all organizations", "ALL_ORGANIZATIONS", "*", None):
        error = assert_refused(
            app,
            InvalidCommand,
            app.revoke_invitation,
            organization_id=text,
            invitation_id=inv.id,
            reason="x",
        )
        assert isinstance(error, InvalidCommand)
        assert {f.split(".")[0] for f in error.fields} == {"organization_id"}
    # Queries: a forgotten scope (None once meant "everyone") is refused, not widened.
    for bad in (None, "acme", str(acme.id)):
        with pytest.raises(InvalidScope, match="ALL_ORGANIZATIONS"):
            app.get_invitation(inv.id, bad)  # type: ignore[arg-type]  # a bad scope: the test
        with pytest.raises(InvalidScope):
            app.invitation_token(inv.id, bad)  # type: ignore[arg-type]  # a bad scope: the test


# --- generations: the newest supersedes -----------------------------------------------


def test_a_new_generation_supersedes_the_pending_one(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    first = _invite(app, acme, 0)
    old_token = app.invitation_token(first.id, acme.id)
    before = len(notifications(app))
    second = app.invite(organization_id=acme.id, generation=2, **(PEOPLE[0] | {"role": "admin"}))

    written = events(app)[before:]
    assert [type(e) for e in written] == [
        Invitation.Invited,
        Organization.InvitationIssued,
        Invitation.Revoked,
    ]
    assert second.position == notifications(app)[-1].id
    old = app.get_invitation(first.id, acme.id)
    assert (old.status, old.revoke_reason) == ("revoked", "superseded by generation 2")
    assert (second.status, second.role) == ("pending", "admin")
    assert_refused(
        app,
        InvitationRevoked,
        app.accept_invitation,
        organization_id=acme.id,
        invitation_id=first.id,
        token=old_token,
        user_id="u",
    )
    assert _accept(app, second).status == "accepted"
    # Re-sending the first generation's invite command is still a no-op (idempotent).
    assert_noop(app, app.invite, old, organization_id=acme.id, **PEOPLE[0])


def test_an_older_generation_after_a_newer_one_is_refused(
    app: OnboardingApplication, acme: OrganizationView
) -> None:
    app.invite(organization_id=acme.id, generation=3, **PEOPLE[0])
    error = assert_refused(
        app, InvitationConflict, app.invite, organization_id=acme.id, generation=2, **PEOPLE[0]
    )
    assert isinstance(error, InvitationConflict)
    assert error.differences == {"generation": (3, 2)}
    assert "generation 3" in str(error)


def test_an_invitation_from_before_the_index_is_refused_all_the_same(
    app: OnboardingApplication, acme: OrganizationView, clock: Any
) -> None:
    """Invitations stored before ``Organization.InvitationIssued`` existed are not listed
    on their organization: deactivation leaves them pending, accept still refuses."""
    inv_id = Invitation.create_id(acme.id, "old@example.com", 1)
    legacy = Invitation(
        organization_id=acme.id,
        email="old@example.com",
        role="member",
        first_name="O",
        last_name="L",
        generation=1,
        token_hash=app.tokens.token_hash(inv_id, 1),
        expires_at=clock() + app.invitation_ttl,
    )
    app.save(legacy)
    app.deactivate(organization_id=acme.id, reason="gone")
    assert app.get_invitation(inv_id, acme.id).status == "pending"
    assert_refused(
        app,
        OrganizationInactive,
        app.accept_invitation,
        organization_id=acme.id,
        invitation_id=inv_id,
        token=app.invitation_token(inv_id, acme.id),
        user_id="u",
    )
