"""Plain, frozen snapshots of aggregate state: what queries and commands return.

Callers never get an aggregate (mutable, with pending events); they get these.
``position`` is the notification id of the last event this call wrote, or ``None``
when the call was a no-op — pass it to the projector's ``wait_until`` to read your
own writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Generic, Self, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from pydantic import BaseModel, ConfigDict, field_validator

from a4c_domain.email_domains import EmailDomainStatus, EmailDomainVerification
from a4c_domain.invitation import EmailStatus, Invitation, InvitationStatus
from a4c_domain.organization import DNSStatus, Organization, OrganizationStatus
from a4c_domain.sso_connection import SSOConnection, SSOStatus
from a4c_domain.webhook_endpoint import WebhookEndpoint, WebhookEndpointStatus

TAggregate = TypeVar("TAggregate", bound=Aggregate)


class View(BaseModel, Generic[TAggregate]):
    """Every field but ``position`` is the aggregate's attribute of the same name.

    ``TAggregate``, the aggregate a view is of, is for :meth:`of`'s type only."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def of(cls, aggregate: TAggregate, position: int | None = None) -> Self:
        view = cls.model_validate(aggregate, from_attributes=True)
        return view.model_copy(update={"position": position})


class OrganizationView(View[Organization]):
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

    @field_validator("invitation_ids", mode="before")
    @classmethod
    def _sorted(cls, ids: Iterable[UUID]) -> tuple[UUID, ...]:
        return tuple(sorted(ids))  # the aggregate keeps a set


class InvitationView(View[Invitation]):
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
    # The sign-in that accepted: its provider (None: the dev sign-in, or before 0.5)
    # and the subject there.
    accepted_issuer: str | None = None
    accepted_subject: str | None = None
    revoke_reason: str | None
    created_on: datetime
    modified_on: datetime
    position: int | None = None


class WebhookEndpointView(View[WebhookEndpoint]):
    """An endpoint as callers see it: no secret, sealed or not, current or previous.

    ``position`` None from ``add_webhook_endpoint`` means it existed already with these
    settings: nothing was created now (the API then shows no new secret).
    """

    id: UUID
    version: int
    owner_id: UUID | None
    name: str
    url: str
    event_types: tuple[str, ...] | None
    organization_id: UUID | None
    description: str
    status: WebhookEndpointStatus
    disabled_reason: str | None
    disabled_automatically: bool
    created_on: datetime
    modified_on: datetime
    position: int | None = None


class SSOConnectionView(View[SSOConnection]):
    """An organization's sign-in provider as callers see it: the configuration in force
    and the one being tried, without their client secrets (sealed or not)."""

    id: UUID
    version: int
    organization_id: UUID
    status: SSOStatus
    generation: int  # the latest configuration's number
    active_generation: int | None
    active_issuer: str | None
    active_client_id: str | None
    pending_generation: int | None
    pending_issuer: str | None
    pending_client_id: str | None
    pending_tested: bool
    tested_email_domain: str | None
    deactivation_reason: str | None
    abandon_reason: str | None
    created_on: datetime
    modified_on: datetime
    position: int | None = None


class EmailDomainView(View[EmailDomainVerification]):
    """An organization's e-mail domain: the TXT record that proves it owns the domain
    (``record_name``, ``record_value``: what its DNS must publish) and whether it did."""

    id: UUID
    version: int
    organization_id: UUID
    domain: str
    challenge: str  # published in DNS: not a secret
    record_name: str
    record_value: str
    status: EmailDomainStatus
    created_on: datetime
    modified_on: datetime
    position: int | None = None
