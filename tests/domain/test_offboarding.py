"""Offboarding an organization: its own event, final, idempotent, told apart from a
compensated bootstrap (``deactivated``) in the aggregate, its view and its public form."""

from __future__ import annotations

from a4c_domain import OnboardingApplication, Organization
from a4c_domain.errors import OrganizationConflict, OrganizationInactive, OrganizationNotFound
from a4c_domain.ids import organization_id
from a4c_domain.invitation import ORGANIZATION_OFFBOARDED
from a4c_domain.organization import INACTIVE_STATUSES, is_inactive
from a4c_domain.public_events import form_of, public_form
from tests.domain.support import Invitee, assert_noop, assert_refused, events, org_fields

PERSON: Invitee = {
    "email": "bob@example.com",
    "role": "admin",
    "first_name": "Bob",
    "last_name": "Ross",
}


def test_offboard_ends_the_organization_and_revokes_its_pending_invitations(
    app: OnboardingApplication,
) -> None:
    org = app.register_organization(**org_fields())
    app.activate(organization_id=org.id)
    pending = app.invite(organization_id=org.id, **PERSON)
    gone = app.offboard(organization_id=org.id, reason="contract ended")
    assert (gone.status, gone.deactivation_reason, gone.failed_step) == (
        "offboarded",
        "contract ended",
        None,
    )
    assert is_inactive(gone.status) and "offboarded" in INACTIVE_STATUSES
    revoked = app.get_invitation(pending.id, org.id)
    assert (revoked.status, revoked.revoke_reason) == ("revoked", ORGANIZATION_OFFBOARDED)
    # Saved together: the offboarding and the revocation, nothing else.
    assert [type(e).__qualname__ for e in events(app)][-2:] == [
        "Organization.Offboarded",
        "Invitation.Revoked",
    ]
    # The same offboarding again is a no-op; another reason conflicts; nothing but
    # compensation follows it.
    assert_noop(app, app.offboard, gone, organization_id=org.id, reason="contract ended")
    error = assert_refused(
        app, OrganizationConflict, app.offboard, organization_id=org.id, reason="other"
    )
    assert isinstance(error, OrganizationConflict) and set(error.differences) == {"reason"}
    assert_refused(app, OrganizationInactive, app.activate, organization_id=org.id)
    assert_refused(app, OrganizationInactive, app.invite, organization_id=org.id, **PERSON)
    assert app.remove_dns(organization_id=org.id).status == "offboarded"
    # A bootstrap's compensation arriving late finds the organization ended already.
    assert_noop(
        app,
        app.deactivate,
        app.get_organization(org.id),
        organization_id=org.id,
        reason="bootstrap failed",
        failed_step="x",
    )


def test_a_compensated_bootstrap_is_not_offboarded(app: OnboardingApplication) -> None:
    org = app.register_organization(**org_fields())
    app.deactivate(organization_id=org.id, reason="bootstrap failed", failed_step="verify_dns")
    assert_refused(
        app, OrganizationInactive, app.offboard, organization_id=org.id, reason="customer left"
    )
    assert app.get_organization(org.id).status == "deactivated"


def test_offboarding_a_missing_organization_is_not_found(app: OnboardingApplication) -> None:
    assert_refused(
        app,
        OrganizationNotFound,
        app.offboard,
        organization_id=organization_id("nobody"),
        reason="x",
    )


def test_offboarded_has_its_own_public_type(app: OnboardingApplication) -> None:
    assert form_of(Organization.Offboarded).type == "organization.offboarded"  # type: ignore[union-attr]
    org = app.register_organization(**org_fields())
    app.offboard(organization_id=org.id, reason="customer left")
    (event,) = [e for e in events(app) if isinstance(e, Organization.Offboarded)]
    public = public_form(event, organization_id=org.id, organization_slug="acme")
    assert public is not None
    assert (public.type, public.data) == ("organization.offboarded", {"reason": "customer left"})
