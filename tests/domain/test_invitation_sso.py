"""Accepting an invitation that an organization's single sign-on covers: once the
organization verified the invited address's e-mail domain and its single sign-on is
active, only a sign-in through its provider accepts (the dev sign-in, the platform's
provider and callers that name nobody are refused with ``SSORequired``, nothing
written); whoever signs in must be the invited address (``IdentityMismatch``). The
acceptance keeps the provider and subject; events from 0.4 read with neither."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from a4c_domain import OnboardingApplication
from a4c_domain.email_domains import email_domain_of
from a4c_domain.errors import IdentityMismatch, SSORequired
from a4c_domain.identity import SignInIdentity, sso_user_id
from a4c_domain.invitation import Invitation
from a4c_domain.views import InvitationView
from tests.domain.support import assert_refused, org_fields

ISSUER = "https://idp.acme.example/realms/staff"
PLATFORM = "https://login.a4c.example"


def invite(app: OnboardingApplication, org: UUID, email: str) -> InvitationView:
    return app.invite(
        organization_id=org, email=email, role="member", first_name="Ada", last_name="King"
    )


def cover(app: OnboardingApplication, org: UUID, domain: str, *, activate: bool = True) -> None:
    """The organization owns ``domain`` and (``activate``) its provider is in force."""
    app.request_email_domain_verification(organization_id=org, domain=domain)
    app.verify_email_domain(organization_id=org, domain=domain)
    app.configure_sso(
        organization_id=org, issuer=ISSUER, client_id="a4c", client_secret="k1:SEALED"
    )
    app.record_sso_test(organization_id=org, generation=1, subject="t", email_domain=domain)
    if activate:
        app.activate_sso(
            organization_id=org, generation=1, authorization_endpoint=ISSUER + "/authorize"
        )


def accept(app: OnboardingApplication, inv: InvitationView, **fields: Any) -> Any:
    token = app.invitation_token(inv.id, inv.organization_id)
    return app.accept_invitation(
        organization_id=inv.organization_id, invitation_id=inv.id, token=token, **fields
    )


def refuses_the_dev_sign_in(app: OnboardingApplication, inv: InvitationView) -> None:
    assert_refused(
        app,
        SSORequired,
        app.accept_invitation,
        organization_id=inv.organization_id,
        invitation_id=inv.id,
        token=app.invitation_token(inv.id, inv.organization_id),
        user_id="dev:1",
    )


def identity(email: str, issuer: str | None = ISSUER, subject: str = "s-1") -> SignInIdentity:
    return SignInIdentity(issuer=issuer, subject=subject, email=email)


@pytest.fixture
def org(app: OnboardingApplication) -> UUID:
    return app.register_organization(**org_fields()).id


def test_only_the_organizations_provider_accepts_where_its_sso_covers_the_address(
    app: OnboardingApplication, org: UUID
) -> None:
    cover(app, org, "acme.example")
    inv = invite(app, org, "Ada@Acme.Example")
    token = app.invitation_token(inv.id, org)
    common = {"organization_id": org, "invitation_id": inv.id, "token": token}
    for refused in (
        {"user_id": "dev:1", "identity": identity("ada@acme.example", issuer=None)},
        {"user_id": "platform-sub", "identity": identity("ada@acme.example", issuer=PLATFORM)},
        {"user_id": "someone"},  # a caller that names no sign-in at all
    ):
        error = assert_refused(app, SSORequired, app.accept_invitation, **common, **refused)
        assert ISSUER in str(error) and "ada@" not in str(error)
    error = assert_refused(
        app,
        IdentityMismatch,
        app.accept_invitation,
        **common,
        user_id=sso_user_id(ISSUER, "s-2"),
        identity=identity("bob@acme.example", subject="s-2"),
    )
    assert "bob@" not in str(error) and "ada@" not in str(error)

    user = sso_user_id(ISSUER, "s-1")
    accepted = accept(app, inv, user_id=user, identity=identity("ada@acme.example"))
    assert (accepted.status, accepted.accepted_by) == ("accepted", user)
    assert (accepted.accepted_issuer, accepted.accepted_subject) == (ISSUER, "s-1")
    again = accept(app, inv, user_id=user, identity=identity("ada@acme.example"))
    assert again.position is None  # the same acceptance again: nothing written


def test_sso_does_not_cover_other_domains_pending_ones_or_other_organizations(
    app: OnboardingApplication, org: UUID
) -> None:
    cover(app, org, "acme.example")
    outside = invite(app, org, "ada@elsewhere.example")
    done = accept(app, outside, user_id="dev:1", identity=identity(outside.email, issuer=None))
    assert (done.status, done.accepted_issuer, done.accepted_subject) == ("accepted", None, "s-1")

    # Another organization inviting an address of the domain acme owns: its own rules.
    other = app.register_organization(**org_fields(slug="other-org", name="Other Org")).id
    theirs = invite(app, other, "eve@acme.example")
    assert accept(app, theirs, user_id="dev:2").status == "accepted"

    # Single sign-on tested but not in force yet: any sign-in still accepts.
    pending = app.register_organization(**org_fields(slug="pending-org", name="Pending")).id
    cover(app, pending, "pending.example", activate=False)
    early = invite(app, pending, "ann@pending.example")
    assert accept(app, early, user_id="dev:3").status == "accepted"


def test_deactivating_sso_opens_the_other_sign_ins_again(
    app: OnboardingApplication, org: UUID
) -> None:
    cover(app, org, "acme.example")
    inv = invite(app, org, "ada@acme.example")
    refuses_the_dev_sign_in(app, inv)
    app.deactivate_sso(organization_id=org, reason="moving providers")
    assert accept(app, inv, user_id="dev:1").status == "accepted"


def test_an_international_domain_is_covered_in_either_spelling(
    app: OnboardingApplication, org: UUID
) -> None:
    cover(app, org, "xn--bcher-kva.example")
    assert email_domain_of("ada@Bücher.example") == "xn--bcher-kva.example"
    inv = invite(app, org, "ada@bücher.example")
    refuses_the_dev_sign_in(app, inv)


def test_an_accepted_event_from_0_4_reads_with_no_identity() -> None:
    state: dict[str, Any] = {"user_id": "u-1"}
    Invitation.Accepted.upcast_v1_v2(state)
    assert state == {"user_id": "u-1", "issuer": None, "subject": None}
    assert Invitation.Accepted.class_version == 2
