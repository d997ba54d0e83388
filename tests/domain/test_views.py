"""What a view carries: exactly these fields, in this order, read from the aggregate.

Pure logic (aggregates built in memory, no store): the views are built by model
validation from the aggregate's attributes, and this pins that their content — every
field, its value and type, the field order, no token hash — is what callers always got.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from pydantic import ValidationError

from a4c_domain import Invitation, InvitationView, Organization, OrganizationView

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PARENT = UUID("00000000-0000-4000-8000-000000000001")
INVITATIONS = [UUID("00000000-0000-4000-8000-00000000000c"), UUID(int=5), UUID(int=3)]


def organization() -> Organization:
    org = Organization(
        name="Acme",
        slug="acme",
        org_type="partner",
        parent_id=PARENT,
        tags=["b", "a"],
        domain="acme.example.com",
    )
    org.configure_dns("acme.example.com", "lb.example.net", "rec-1")
    org.verify_dns()
    for inv_id in INVITATIONS:
        org.record_invitation(inv_id)
    org.deactivate("no longer a partner", "dns")
    return org


def invitation() -> Invitation:
    inv = Invitation(
        organization_id=PARENT,
        email="ada@example.com",
        role="admin",
        first_name="Ada",
        last_name="Lovelace",
        generation=2,
        token_hash="a-token-hash",
        expires_at=T0 + timedelta(days=7),
    )
    inv.record_email_failed(1, "mailbox full")
    inv.revoke("changed our mind")
    return inv


def test_an_organization_view_is_its_state_with_the_position() -> None:
    org = organization()
    view = OrganizationView.of(org, 42)
    assert view.model_dump() == {
        "id": org.id,
        "version": org.version,
        "name": "Acme",
        "slug": "acme",
        "org_type": "partner",
        "parent_id": PARENT,
        "tags": ("b", "a"),
        "domain": "acme.example.com",
        "status": "deactivated",
        "dns_status": "verified",
        "fqdn": "acme.example.com",
        "dns_target": "lb.example.net",
        "dns_record_id": "rec-1",
        "deactivation_reason": "no longer a partner",
        "failed_step": "dns",
        "created_on": org.created_on,
        "modified_on": org.modified_on,
        "position": 42,
        "invitation_ids": tuple(sorted(INVITATIONS)),
    }
    assert list(view.model_dump()) == list(OrganizationView.model_fields)
    assert org.version == 7
    assert OrganizationView.of(org).position is None


def test_an_invitation_view_is_its_state_without_the_token_hash() -> None:
    inv = invitation()
    view = InvitationView.of(inv, 9)
    assert view.model_dump() == {
        "id": inv.id,
        "version": 3,
        "organization_id": PARENT,
        "email": "ada@example.com",
        "role": "admin",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "generation": 2,
        "token_generation": 1,
        "expires_at": T0 + timedelta(days=7),
        "status": "revoked",
        "email_status": "failed",
        "message_id": None,
        "email_error": "mailbox full",
        "accepted_by": None,
        "accepted_issuer": None,
        "accepted_subject": None,
        "revoke_reason": "changed our mind",
        "created_on": inv.created_on,
        "modified_on": inv.modified_on,
        "position": 9,
    }
    assert "a-token-hash" not in repr(view)
    assert InvitationView.of(inv).position is None


def test_views_are_frozen() -> None:
    view = OrganizationView.of(organization())
    with pytest.raises(ValidationError, match="frozen"):
        view.name = "Other"  # type: ignore[misc]
