"""What the ``/v1`` routes take and answer.

Requests reuse the workflows' field types (slug, names, normalised e-mail), so a bad
field is refused with the same words the domain would use, before anything starts.
Answers are built from the read models' records field by field: never a token, a
token hash or a mail's message id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from a4c_domain.commands import (
    Email,
    Hostname,
    OrganizationName,
    OrganizationType,
    PersonName,
    Reason,
    Role,
    Slug,
    Tags,
    any_case,
    hostname_pattern,
)
from a4c_domain.invitation import EmailStatus
from a4c_domain.invitation import InvitationStatus as InvitationState
from a4c_domain.organization import DNSStatus, OrganizationStatus
from a4c_domain.public_events import PublicEvent
from a4c_projector.queries import InvitationRecord, MemberRecord, OrganizationRecord
from a4c_worker.contracts import Invitee, NewInvitee
from a4c_worker.workflows.models import (
    DAY,
    MAX_GRACE_PERIOD_SECONDS,
    BootstrapInput,
    BootstrapProgress,
    OffboardingProgress,
)


class Incoming(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Answer(BaseModel):
    """A response body."""

    model_config = ConfigDict(frozen=True)


# --- organizations --------------------------------------------------------------------


# What BootstrapInput takes when the timing is left out.
DEFAULT_TTL = BootstrapInput.model_fields["invitation_ttl_seconds"].default
DEFAULT_REMINDER = BootstrapInput.model_fields["reminder_before_seconds"].default
EXAMPLE_DOMAIN = "acme.orgs.example.com"  # OnboardRequest's example; in_zone moves it


class BootstrapTiming(Incoming):
    """How long the bootstrap waits (seconds); production's defaults when left out.

    Each is a JSON number (``strict``): ``false`` is not 0 seconds, nor ``"30"`` 30.

    Meant for tests and staging; onboarding is a platform operator's action anyway.
    """

    propagation_wait_seconds: float | None = Field(default=None, ge=0, le=DAY, strict=True)
    dns_verify_attempts: int | None = Field(default=None, ge=1, le=50, strict=True)
    dns_verify_initial_interval_seconds: float | None = Field(
        default=None, gt=0, le=DAY, strict=True
    )
    invitation_ttl_seconds: float | None = Field(default=None, gt=0, le=365 * DAY, strict=True)
    reminder_before_seconds: float | None = Field(
        default=None,
        ge=0,
        strict=True,
        description=f"Less than invitation_ttl_seconds ({DEFAULT_TTL:g} when left out); "
        f"{DEFAULT_REMINDER:g} when left out",
    )


class OnboardRequest(Incoming):
    """An organization to onboard: registered, its DNS record (with ``domain``), its
    first invitations mailed, then activated. The same request again answers with the
    same organization; another request for a slug already taken is a conflict."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Health",
                    "slug": "acme",
                    "org_type": "provider",
                    "tags": ["pilot"],
                    "domain": EXAMPLE_DOMAIN,
                    "invitees": [
                        {
                            "email": "ada@acme.example",
                            "role": "owner",
                            "first_name": "Ada",
                            "last_name": "Lovelace",
                        }
                    ],
                }
            ]
        },
    )

    name: OrganizationName
    slug: Slug
    org_type: OrganizationType
    parent_id: UUID | None = Field(default=None, description="An existing organization's id")
    tags: Tags = Field(default_factory=list)
    domain: Hostname | None = None
    invitees: list[NewInvitee] = Field(
        default_factory=list,
        max_length=200,
        description="Each address once (compared in lower case)",
    )
    timing: BootstrapTiming | None = None

    def bootstrap_fields(self) -> dict[str, Any]:
        """The fields of ``BootstrapInput`` this request sets."""
        fields = self.model_dump(exclude={"timing"})
        if self.timing is not None:
            fields.update(self.timing.model_dump(exclude_none=True))
        return fields


def in_zone(openapi: dict[str, Any], zone: str) -> dict[str, Any]:
    """The OpenAPI document of a service whose DNS zone is ``zone`` (DNS_ZONE): an
    onboarding's ``domain`` is a name below it, in its schema and its example."""
    onboarding = openapi["components"]["schemas"]["OnboardRequest"]
    [hostname, _] = onboarding["properties"]["domain"]["anyOf"]  # the name, or null
    hostname["pattern"] = hostname_pattern(rf"(?:\.LABEL)*\.{any_case(zone)}")
    hostname["description"] = f"A host name below {zone} (lower-cased, trailing dot dropped)"
    for example in onboarding.get("examples", []):
        if example.get("domain") == EXAMPLE_DOMAIN:
            example["domain"] = f"acme.{zone}"
    return openapi


class CancelBody(Incoming):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"reason": "wrong slug"}]}
    )

    reason: Reason = "cancelled by request"


class Organization(Answer):
    """An organization as the read model shows it."""

    id: UUID
    slug: str
    name: str
    org_type: str
    parent_id: UUID | None
    tags: tuple[str, ...]
    domain: str | None
    status: OrganizationStatus
    dns_status: DNSStatus
    fqdn: str | None
    deactivation_reason: str | None
    failed_step: str | None
    registered_at: datetime
    dns_verified_at: datetime | None
    activated_at: datetime | None
    deactivated_at: datetime | None
    modified_at: datetime

    @classmethod
    def of(cls, record: OrganizationRecord) -> Organization:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class OrganizationView(Answer):
    """One organization: ``organization`` is the read model's row (null until the
    projection shows the registration), ``progress`` the bootstrap workflow's live
    progress (null when there is no such workflow, or it has not run yet)."""

    id: UUID
    slug: str
    organization: Organization | None
    progress: BootstrapProgress | None


class OffboardRequest(Incoming):
    """Why the organization leaves, and how long it may still be called off."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"reason": "contract ended", "grace_period_seconds": 0}]},
    )

    reason: Reason
    grace_period_seconds: float = Field(
        default=0.0,
        ge=0,
        strict=True,
        le=MAX_GRACE_PERIOD_SECONDS,
        description="Wait this long before changing anything; until then it can be cancelled",
    )


class OffboardingView(Answer):
    """An organization and its offboarding: ``organization`` is the read model's row
    (null until the projection shows it), ``offboarding`` the offboarding workflow's
    live progress (null when there is none, or it has not run yet)."""

    id: UUID
    slug: str
    organization: Organization | None
    offboarding: OffboardingProgress | None


class OrganizationList(Answer):
    organizations: list[Organization]


# --- invitations ----------------------------------------------------------------------


class InviteRequest(Incoming):
    """Invite someone to the organization. Inviting an address whose last invitation was
    revoked or expired issues the next generation; the same invitation while it is
    pending answers with it; a pending one with other details is a conflict."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "email": "grace@acme.example",
                    "role": "admin",
                    "first_name": "Grace",
                    "last_name": "Hopper",
                }
            ]
        },
    )

    email: Email
    role: Role
    first_name: PersonName
    last_name: PersonName

    def invitee(self) -> Invitee:
        return Invitee.model_validate(self.model_dump())


class RevokeBody(Incoming):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"reason": "left the team"}]}
    )

    reason: Reason


_NOT_YET_SHOWN = (
    "null only in the answer to an invite the read models did not show yet (A4C-Consistent: false)"
)


class Invitation(Answer):
    """An invitation: never its token nor the token's hash."""

    id: UUID
    organization_id: UUID
    email: str
    role: str
    first_name: str
    last_name: str
    generation: int
    token_generation: int = Field(description="1, then one more per re-send")
    status: InvitationState
    email_status: EmailStatus | None = Field(description=_NOT_YET_SHOWN)
    expires_at: datetime | None = Field(description=_NOT_YET_SHOWN)
    invited_at: datetime | None = Field(description=_NOT_YET_SHOWN)
    email_sent_at: datetime | None
    accepted_by: str | None
    accepted_at: datetime | None
    revoke_reason: str | None
    revoked_at: datetime | None
    expired_at: datetime | None

    @classmethod
    def of(cls, record: InvitationRecord) -> Invitation:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class InvitationList(Answer):
    invitations: list[Invitation]


class Member(Answer):
    """Someone who accepted an invitation: ``user_id`` is who signed in to accept."""

    user_id: str
    email: str
    role: str
    first_name: str
    last_name: str
    joined_at: datetime
    invitation_id: UUID
    issuer: str | None = Field(
        description="The identity provider they signed in with to accept (the platform's or "
        "their organization's own); null for the development sign-in and members from "
        "before 0.5"
    )
    subject: str | None = Field(description="Who they are at that provider (its `sub`)")

    @classmethod
    def of(cls, record: MemberRecord) -> Member:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))


class MemberList(Answer):
    members: list[Member]


# --- events ---------------------------------------------------------------------------


class EventPage(Answer):
    """A page of public events, oldest first: pass ``next`` back as ``after``."""

    data: list[PublicEvent]
    next: str = Field(
        description="Pass it as `after` next time: after the last event answered (with none, "
        "past every event there is so far that this query would match)"
    )
    has_more: bool = Field(description="More events are there now: ask again at once")
