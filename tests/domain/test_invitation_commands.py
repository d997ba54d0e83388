"""Invitation commands: invite, e-mail outcomes, accept by token, re-send, revoke, expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from a4c_domain import ALL_ORGANIZATIONS, Invitation, OnboardingApplication, invitation_id
from a4c_domain.errors import (
    InvalidCommand,
    InvalidToken,
    InvitationAlreadyAccepted,
    InvitationConflict,
    InvitationExpired,
    InvitationNotFound,
    InvitationNotYetExpired,
    InvitationRevoked,
    OrganizationInactive,
    OrganizationNotFound,
)
from a4c_domain.tokens import TokenIssuer
from a4c_domain.views import InvitationView
from tests.domain.support import (
    FakeClock,
    Invitee,
    assert_noop,
    assert_refused,
    events,
    org_fields,
)
from tests.support import TOKEN_SECRET

PERSON: Invitee = {
    "email": "Alice@Example.COM",
    "role": "admin",
    "first_name": "Alice",
    "last_name": "Liddell",
}


@pytest.fixture
def invited(app: OnboardingApplication) -> InvitationView:
    org = app.register_organization(**org_fields())
    return app.invite(organization_id=org.id, **PERSON)


def test_invite_happy_path_and_repeat(
    app: OnboardingApplication, invited: InvitationView, clock: FakeClock
) -> None:
    assert invited.email == "alice@example.com"
    assert invited.id == invitation_id(invited.organization_id, "alice@example.com", 1)
    assert (invited.status, invited.email_status, invited.token_generation) == (
        "pending",
        "not_sent",
        1,
    )
    assert invited.expires_at == clock.now + timedelta(days=7)
    assert invited.position is not None
    clock.advance(timedelta(hours=1))  # a retry later must not move the expiry
    again = assert_noop(
        app,
        app.invite,
        invited,
        organization_id=invited.organization_id,
        **{**PERSON, "email": "alice@example.com"},
    )
    assert again.expires_at == invited.expires_at
    assert not hasattr(again, "token_hash")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "viewer"}, "role"),
        ({"first_name": "Alicia"}, "first_name"),
        ({"last_name": "L"}, "last_name"),
    ],
)
def test_invite_conflicting_content(
    app: OnboardingApplication, invited: InvitationView, change: dict[str, str], field: str
) -> None:
    error = assert_refused(
        app,
        InvitationConflict,
        app.invite,
        organization_id=invited.organization_id,
        **{**PERSON, **change},
    )
    assert isinstance(error, InvitationConflict) and list(error.differences) == [field]


def test_a_new_generation_is_a_new_invitation(
    app: OnboardingApplication, invited: InvitationView
) -> None:
    second = app.invite(organization_id=invited.organization_id, generation=2, **PERSON)
    assert second.id != invited.id and second.generation == 2
    assert app.invitation_token(second.id, invited.organization_id) != app.invitation_token(
        invited.id, invited.organization_id
    )


def test_invite_needs_a_live_organization(app: OnboardingApplication) -> None:
    missing = app.register_organization(**org_fields()).id
    app.deactivate(organization_id=missing, reason="gone")
    assert_refused(app, OrganizationInactive, app.invite, organization_id=missing, **PERSON)
    other = invitation_id(missing, "x@example.com")  # any uuid that is no organization
    assert_refused(app, OrganizationNotFound, app.invite, organization_id=other, **PERSON)


def test_email_outcomes(app: OnboardingApplication, invited: InvitationView) -> None:
    def sent(message_id: str) -> dict[str, Any]:
        return {
            "organization_id": invited.organization_id,
            "invitation_id": invited.id,
            "token_generation": 1,
            "message_id": message_id,
        }

    failure: dict[str, Any] = {
        "organization_id": invited.organization_id,
        "invitation_id": invited.id,
        "token_generation": 1,
        "reason": "bounced",
    }
    first = app.record_email_sent(**sent("m-1"))
    assert (first.email_status, first.message_id) == ("sent", "m-1")
    assert_noop(app, app.record_email_sent, first, **sent("m-1"))
    failed = app.record_email_failed(**failure)
    assert (failed.email_status, failed.email_error) == ("failed", "bounced")
    # A late retry of an outcome already recorded never reverts a later one.
    assert_noop(app, app.record_email_sent, failed, **sent("m-1"))
    assert_noop(app, app.record_email_failed, failed, **failure)
    resent = app.record_email_sent(**sent("m-2"))
    assert (resent.email_status, resent.message_id, resent.email_error) == ("sent", "m-2", None)
    assert_refused(
        app, InvitationConflict, app.record_email_sent, **{**sent("m-3"), "token_generation": 2}
    )


def test_accept_with_the_right_token(app: OnboardingApplication, invited: InvitationView) -> None:
    token = app.invitation_token(invited.id, invited.organization_id)
    accepted = app.accept_invitation(
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token=token,
        user_id="user-1",
    )
    assert (accepted.status, accepted.accepted_by) == ("accepted", "user-1")
    assert_noop(
        app,
        app.accept_invitation,
        accepted,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token=token,
        user_id="user-1",
    )
    assert_refused(
        app,
        InvitationAlreadyAccepted,
        app.accept_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token=token,
        user_id="user-2",
    )
    assert_refused(
        app,
        InvitationAlreadyAccepted,
        app.revoke_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        reason="x",
    )
    assert_refused(
        app,
        InvitationAlreadyAccepted,
        app.expire_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
    )
    assert [type(e) for e in events(app)][-1] is Invitation.Accepted


def test_accept_with_a_wrong_token(app: OnboardingApplication, invited: InvitationView) -> None:
    token = app.invitation_token(invited.id, invited.organization_id)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    other_invitation = TokenIssuer(TOKEN_SECRET).token(invitation_id(UUID(int=1), "a@b.cd"), 1)
    other_secret = TokenIssuer("another-secret-that-is-32-bytes-long!").token(invited.id, 1)
    for bad in (wrong, other_invitation, other_secret):
        assert_refused(
            app,
            InvalidToken,
            app.accept_invitation,
            organization_id=invited.organization_id,
            invitation_id=invited.id,
            token=bad,
            user_id="u",
        )
    for malformed in ("x", token + "x", token[:-1] + "=", token[:-1] + "\x00"):
        error = assert_refused(
            app,
            InvalidCommand,
            app.accept_invitation,
            organization_id=invited.organization_id,
            invitation_id=invited.id,
            token=malformed,
            user_id="u",
        )
        assert isinstance(error, InvalidCommand) and error.fields == ["token"]
        assert token[:20] not in str(error)


def test_accept_after_expiry(
    app: OnboardingApplication, invited: InvitationView, clock: FakeClock
) -> None:
    token = app.invitation_token(invited.id, invited.organization_id)
    clock.now = invited.expires_at
    assert_refused(
        app,
        InvitationExpired,
        app.accept_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token=token,
        user_id="u",
    )


def test_accept_after_revocation(app: OnboardingApplication, invited: InvitationView) -> None:
    token = app.invitation_token(invited.id, invited.organization_id)
    revoked = app.revoke_invitation(
        organization_id=invited.organization_id, invitation_id=invited.id, reason="bootstrap failed"
    )
    assert (revoked.status, revoked.revoke_reason) == ("revoked", "bootstrap failed")
    assert_noop(
        app,
        app.revoke_invitation,
        revoked,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        reason="bootstrap failed",
    )
    assert_refused(
        app,
        InvitationRevoked,
        app.accept_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token=token,
        user_id="u",
    )
    assert_refused(
        app,
        InvitationRevoked,
        app.expire_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
    )


def test_reissue_invalidates_the_old_token(
    app: OnboardingApplication, invited: InvitationView, clock: FakeClock
) -> None:
    old_token = app.invitation_token(invited.id, invited.organization_id)
    clock.advance(timedelta(days=6))
    reissued = app.reissue_token(
        organization_id=invited.organization_id, invitation_id=invited.id, token_generation=2
    )
    assert reissued.token_generation == 2
    assert reissued.expires_at == clock.now + timedelta(days=7)
    assert reissued.email_status == "not_sent"
    assert_noop(
        app,
        app.reissue_token,
        reissued,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token_generation=2,
    )
    new_token = app.invitation_token(invited.id, invited.organization_id)
    assert new_token != old_token
    assert_refused(
        app,
        InvalidToken,
        app.accept_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token=old_token,
        user_id="u",
    )
    assert_refused(
        app,
        InvitationConflict,
        app.reissue_token,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token_generation=4,
    )
    app.reissue_token(
        organization_id=invited.organization_id, invitation_id=invited.id, token_generation=3
    )
    # A late retry of an already superseded generation is a no-op, not a step back.
    assert_noop(
        app,
        app.reissue_token,
        app.get_invitation(invited.id, invited.organization_id),
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token_generation=2,
    )
    latest = app.invitation_token(invited.id, invited.organization_id)
    accepted = app.accept_invitation(
        organization_id=invited.organization_id, invitation_id=invited.id, token=latest, user_id="u"
    )
    assert accepted.status == "accepted"
    assert_refused(
        app,
        InvitationAlreadyAccepted,
        app.reissue_token,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token_generation=4,
    )


def test_expire(app: OnboardingApplication, invited: InvitationView, clock: FakeClock) -> None:
    assert_refused(
        app,
        InvitationNotYetExpired,
        app.expire_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
    )
    # A timer firing a few seconds early (clock drift) still expires it.
    clock.now = invited.expires_at - timedelta(seconds=3)
    expired = app.expire_invitation(
        organization_id=invited.organization_id, invitation_id=invited.id
    )
    assert expired.status == "expired"
    assert_noop(
        app,
        app.expire_invitation,
        expired,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
    )
    assert_refused(
        app,
        InvitationExpired,
        app.revoke_invitation,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        reason="x",
    )
    assert_refused(
        app,
        InvitationExpired,
        app.reissue_token,
        organization_id=invited.organization_id,
        invitation_id=invited.id,
        token_generation=2,
    )


def test_commands_on_a_missing_invitation(app: OnboardingApplication) -> None:
    missing = invitation_id(UUID(int=1), "nobody@example.com")
    commands: list[tuple[Callable[..., InvitationView], dict[str, Any]]] = [
        (app.record_email_sent, {"token_generation": 1, "message_id": "m"}),
        (app.record_email_failed, {"token_generation": 1, "reason": "r"}),
        (app.reissue_token, {"token_generation": 2}),
        (app.accept_invitation, {"token": "t" * 43, "user_id": "u"}),
        (app.revoke_invitation, {"reason": "r"}),
        (app.expire_invitation, {}),
    ]
    for command, fields in commands:
        for scope in (UUID(int=1), ALL_ORGANIZATIONS):
            assert_refused(
                app,
                InvitationNotFound,
                command,
                organization_id=scope,
                invitation_id=missing,
                **fields,
            )
    with pytest.raises(InvitationNotFound):
        app.get_invitation(missing, ALL_ORGANIZATIONS)
    with pytest.raises(InvitationNotFound):
        app.invitation_token(missing, UUID(int=1))


def test_explicit_expiry_must_be_timezone_aware(
    app: OnboardingApplication, invited: InvitationView
) -> None:
    naive = invited.expires_at.replace(tzinfo=None)
    error = assert_refused(
        app,
        InvalidCommand,
        app.invite,
        organization_id=invited.organization_id,
        expires_at=naive,
        **{**PERSON, "email": "bob@example.com"},
    )
    assert isinstance(error, InvalidCommand) and error.fields == ["expires_at"]
