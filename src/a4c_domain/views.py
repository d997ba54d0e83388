"""Plain, frozen snapshots of aggregate state: what queries and commands return.

Callers never get an aggregate (mutable, with pending events); they get these.
``position`` is the notification id of the last event this call wrote, or ``None``
when the call was a no-op — pass it to the projector's ``wait_until`` to read your
own writes.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from a4c_domain.invitation import EmailStatus, Invitation, InvitationStatus
from a4c_domain.organization import DNSStatus, Organization, OrganizationStatus


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


class OrganizationView(View):
    id: UUID
    version: int
    name: str
    slug: str
    org_type: str
    parent_id: UUID | None
    tags: tuple[str, ...]
    domain: str | None
    status: OrganizationStatus
    dns_status: DNSStatus
    fqdn: str | None
    dns_target: str | None
    dns_record_id: str | None
    deactivation_reason: str | None
    failed_step: str | None
    created_on: datetime
    modified_on: datetime
    position: int | None = None
    # Its invitations (every generation), for whoever must reach them all (deactivation).
    invitation_ids: tuple[UUID, ...] = ()

    @classmethod
    def of(cls, org: Organization, position: int | None = None) -> OrganizationView:
        return cls(
            id=org.id,
            version=org.version,
            name=org.name,
            slug=org.slug,
            org_type=org.org_type,
            parent_id=org.parent_id,
            tags=tuple(org.tags),
            domain=org.domain,
            status=org.status,
            dns_status=org.dns_status,
            fqdn=org.fqdn,
            dns_target=org.dns_target,
            dns_record_id=org.dns_record_id,
            deactivation_reason=org.deactivation_reason,
            failed_step=org.failed_step,
            created_on=org.created_on,
            modified_on=org.modified_on,
            position=position,
            invitation_ids=tuple(sorted(org.invitation_ids)),
        )


class InvitationView(View):
    """An invitation as callers see it: no token, no token hash."""

    id: UUID
    version: int
    organization_id: UUID
    email: str
    role: str
    first_name: str
    last_name: str
    generation: int
    token_generation: int
    expires_at: datetime
    status: InvitationStatus
    email_status: EmailStatus
    message_id: str | None
    email_error: str | None
    accepted_by: str | None
    revoke_reason: str | None
    created_on: datetime
    modified_on: datetime
    position: int | None = None

    @classmethod
    def of(cls, inv: Invitation, position: int | None = None) -> InvitationView:
        return cls(
            id=inv.id,
            version=inv.version,
            organization_id=inv.organization_id,
            email=inv.email,
            role=inv.role,
            first_name=inv.first_name,
            last_name=inv.last_name,
            generation=inv.generation,
            token_generation=inv.token_generation,
            expires_at=inv.expires_at,
            status=inv.status,
            email_status=inv.email_status,
            message_id=inv.message_id,
            email_error=inv.email_error,
            accepted_by=inv.accepted_by,
            revoke_reason=inv.revoke_reason,
            created_on=inv.created_on,
            modified_on=inv.modified_on,
            position=position,
        )
