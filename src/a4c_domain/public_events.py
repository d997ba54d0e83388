"""The public form of the domain events: what other services read (the events API, webhooks).

Each event class of the aggregates has exactly one entry in :data:`PUBLIC_FORMS`: either
a :class:`Public` form (a stable type name such as ``invitation.accepted`` and the model
of its ``data``) or :class:`Internal` (bookkeeping other services never see, with the
reason). There is no silent omission: :func:`public_form` raises for a class without an
entry, and ``tests/domain/test_public_events.py`` fails for one.

A public event is versioned as a whole (:data:`PUBLIC_EVENTS_VERSION`, its
``schema_version``): a field is only ever added; renaming or removing one, or changing
its meaning, is a new version. Its ``data`` holds public fields only, copied from the
event: never a token hash, cipher text, a provider's record or message id, the cause
metadata or other bookkeeping; of personal data only the invitee's e-mail address, on
``invitation.invited`` (the one event a consumer needs it on, to know who was invited;
names stay in the members API). ``docs/domain.md`` ("Public events") lists every type
and field.

Written by :func:`public_body`, byte for byte what ``PublicEvent.model_dump_json()``
gives: compact, the field order fixed, times RFC 3339 in UTC with microseconds
(``2026-12-07T08:00:00.123456Z``), so the same event always has the same body.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from a4c_domain.base import DomainAggregate
from a4c_domain.claims import DomainClaim
from a4c_domain.email_domains import EmailDomainClaim, EmailDomainVerification
from a4c_domain.fields import AwareDatetime, OrganizationMailKind
from a4c_domain.ids import event_id as _event_id
from a4c_domain.invitation import Invitation
from a4c_domain.organization import Organization
from a4c_domain.sso_connection import SSOConnection
from a4c_domain.webhook_endpoint import WebhookEndpoint

PUBLIC_EVENTS_VERSION: Final = 1

SubjectKind = Literal["organization", "invitation"]


def rfc3339(value: datetime) -> str:
    """``value`` in UTC with microseconds and ``Z``: one spelling per instant."""
    if value.tzinfo is not UTC:  # events' times already are (spared: once per event)
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"  # without "+00:00"


Timestamp = Annotated[
    AwareDatetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Data(BaseModel):
    """The ``data`` of one public type: its fields are copied from the event's own
    attributes of the same name."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoData(_Data):
    """The event carries nothing beyond its type and subject."""


class OrganizationRegisteredData(_Data):
    name: str
    org_type: Literal["provider", "partner"]
    parent_id: UUID | None
    tags: list[str]
    domain: str | None


class DNSConfiguredData(_Data):
    fqdn: str
    target: str


class DNSRemovedData(_Data):
    fqdn: str | None  # None: removed before any record was configured


class DeactivatedData(_Data):
    reason: str
    failed_step: str | None


class OrganizationEmailSentData(_Data):
    kind: OrganizationMailKind  # never whom, never the message id


class OffboardedData(_Data):
    reason: str


class InvitedData(_Data):
    email: str
    role: str
    generation: int
    expires_at: Timestamp


class EmailOutcomeData(_Data):
    token_generation: int  # which link the mail carried (the provider's ids stay inside)


class TokenReissuedData(_Data):
    token_generation: int
    expires_at: Timestamp


class AcceptedData(_Data):
    user_id: str  # the identity provider's subject of who accepted


class RevokedData(_Data):
    reason: str


@dataclass(frozen=True)
class Public:
    """A public event type: its name (``<subject kind>.<what happened>``) and data."""

    type: str
    data: builtins.type[_Data]

    @cached_property
    def kind(self) -> SubjectKind:
        kind = self.type.split(".", 1)[0]
        assert kind in ("organization", "invitation"), self.type
        return kind  # type: ignore[return-value]

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The data's field names: the event attributes copied."""
        return tuple(self.data.model_fields)

    @cached_property
    def after_id(self) -> str:
        """The body's text from the id's closing quote to the time's opening one."""
        return f'","type":"{self.type}","schema_version":{PUBLIC_EVENTS_VERSION},"occurred_at":"'

    @cached_property
    def before_subject_id(self) -> str:
        return f',"subject":{{"kind":"{self.kind}","id":"'


@dataclass(frozen=True)
class Internal:
    """Bookkeeping of the domain's own, never published; ``why`` says what covers it."""

    why: str


PUBLIC_FORMS: Mapping[type[DomainAggregate.Event], Public | Internal] = MappingProxyType(
    {
        Organization.Registered: Public("organization.registered", OrganizationRegisteredData),
        Organization.DNSConfigured: Public("organization.dns_configured", DNSConfiguredData),
        Organization.DNSVerified: Public("organization.dns_verified", NoData),
        Organization.DNSRemoved: Public("organization.dns_removed", DNSRemovedData),
        Organization.Activated: Public("organization.activated", NoData),
        Organization.Deactivated: Public("organization.deactivated", DeactivatedData),
        Organization.EmailSent: Public("organization.email_sent", OrganizationEmailSentData),
        Organization.Offboarded: Public("organization.offboarded", OffboardedData),
        Organization.InvitationIssued: Internal(
            "the organization's index of its invitations; invitation.invited says it"
        ),
        Invitation.Invited: Public("invitation.invited", InvitedData),
        Invitation.EmailSent: Public("invitation.email_sent", EmailOutcomeData),
        Invitation.EmailFailed: Public("invitation.email_failed", EmailOutcomeData),
        Invitation.TokenReissued: Public("invitation.token_reissued", TokenReissuedData),
        Invitation.Accepted: Public("invitation.accepted", AcceptedData),
        Invitation.Revoked: Public("invitation.revoked", RevokedData),
        Invitation.Expired: Public("invitation.expired", NoData),
        DomainClaim.Claimed: Internal(
            "which organization holds a domain; organization.registered and "
            "organization.dns_configured name the domain"
        ),
        # Webhook endpoints are the platform's delivery settings, read through
        # /v1/webhook-endpoints (their secrets are sealed in the events): not a feed item.
        **dict.fromkeys(
            (
                WebhookEndpoint.Added,
                WebhookEndpoint.Changed,
                WebhookEndpoint.SecretRotated,
                WebhookEndpoint.Disabled,
                WebhookEndpoint.Enabled,
                WebhookEndpoint.Deleted,
                WebhookEndpoint.Reinstated,
            ),
            Internal("webhook delivery settings, read through /v1/webhook-endpoints"),
        ),
        # An organization's sign-in settings (client secrets sealed in them) and its
        # requests for e-mail domains: the organization's own configuration, not a feed
        # item. (Whether an organization.sso_activated is worth publishing, without any
        # of it, is a question for when consumers ask: adding a type is compatible.)
        **dict.fromkeys(
            (
                SSOConnection.Configured,
                SSOConnection.Reconfigured,
                SSOConnection.Tested,
                SSOConnection.Activated,
                SSOConnection.Abandoned,
                SSOConnection.Deactivated,
            ),
            Internal("an organization's single sign-on settings, its own configuration"),
        ),
        **dict.fromkeys(
            (EmailDomainVerification.Requested, EmailDomainVerification.Verified),
            Internal("an organization's proof that it owns an e-mail domain"),
        ),
        EmailDomainClaim.Claimed: Internal(
            "which organization owns an e-mail domain, once it proved it"
        ),
    }
)
PUBLIC_EVENT_TYPES: frozenset[str] = frozenset(
    form.type for form in PUBLIC_FORMS.values() if isinstance(form, Public)
)
_TYPE_ENUM: list[JsonValue] = [*sorted(PUBLIC_EVENT_TYPES)]
# Each public type's data model.
PUBLIC_DATA: Mapping[str, builtins.type[BaseModel]] = MappingProxyType(
    {form.type: form.data for form in PUBLIC_FORMS.values() if isinstance(form, Public)}
)


class PublicOrganization(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    slug: str


class PublicSubject(BaseModel):
    """The aggregate the event happened to, and its version after it: a consumer keeps
    the highest version it has applied per subject and discards an older one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SubjectKind
    id: UUID
    version: int = Field(ge=1)


class PublicEvent(BaseModel):
    """One domain event as other services see it (``schema_version`` 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(description="The deterministic event id: deduplicate on it")
    type: str = Field(json_schema_extra={"enum": _TYPE_ENUM})
    schema_version: Literal[1] = PUBLIC_EVENTS_VERSION
    occurred_at: Timestamp
    organization: PublicOrganization
    subject: PublicSubject
    data: dict[str, Any]

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in PUBLIC_EVENT_TYPES:
            raise ValueError(f"unknown public event type {value!r}")
        return value

    @model_validator(mode="after")
    def _data_of_its_type(self) -> PublicEvent:
        PUBLIC_DATA[self.type].model_validate(self.data)
        return self


def form_of(event_class: type) -> Public | Internal:
    """The entry of ``event_class`` (or of its nearest mapped base class)."""
    for klass in event_class.__mro__:
        form = PUBLIC_FORMS.get(klass)
        if form is not None:
            return form
    raise LookupError(f"event class {event_class.__qualname__} has no public form entry")


def organization_id_of(event: DomainAggregate.Event) -> UUID | None:
    """The organization an event names itself; None for an invitation's later events
    (their organization is their ``Invited`` event's)."""
    if isinstance(event, Organization.Event):
        return event.originator_id
    if isinstance(event, Invitation.Invited):
        return event.organization_id
    return None


def public_form(
    event: DomainAggregate.Event, *, organization_id: UUID, organization_slug: str
) -> PublicEvent | None:
    """``event`` in its public form; None for an internal one. The organization (an
    invitation's) is the caller's to find: :func:`organization_id_of` gives it when the
    event names it, and its slug is the organization's ``Registered`` event's."""
    body = public_body(event, organization_id=organization_id, organization_slug=organization_slug)
    return None if body is None else PublicEvent.model_validate_json(body)


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _plain(value: Any) -> Any:
    """An event attribute's value as JSON has it (times as :func:`rfc3339`)."""
    if value is None or type(value) is str or type(value) is int:  # the most, first
        return value
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@lru_cache(maxsize=4096)
def _organization_json(organization_id: UUID, slug: str) -> str:
    return f'{{"id":"{organization_id}","slug":{_encode(slug)}}}'


def public_body(
    event: DomainAggregate.Event,
    *,
    organization_id: UUID,
    organization_slug: str,
    event_id: UUID | None = None,
) -> str | None:
    """The JSON of :func:`public_form` (None for an internal event), written directly.

    Exactly ``public_form(...).model_dump_json()`` (compact, fields in the model's
    order; ``tests/domain/test_public_events.py`` checks both agree for every type), at
    a fraction of the cost: the projector writes one per event of a catch-up, where
    building and validating the models cost more than the rest of the event's work.
    ``event_id``: the event's id when the caller has it (the projector computes it
    faster than :func:`a4c_domain.ids.event_id`).
    """
    form = form_of(type(event))
    if isinstance(form, Internal):
        return None
    fields = form.fields
    data = _encode({name: _plain(getattr(event, name)) for name in fields}) if fields else "{}"
    if event_id is None:
        event_id = _event_id(event.originator_id, event.originator_version)
    return (
        f'{{"id":"{event_id}{form.after_id}{rfc3339(event.timestamp)}","organization":'
        f"{_organization_json(organization_id, organization_slug)}{form.before_subject_id}"
        f'{event.originator_id}","version":{event.originator_version}}},"data":{data}}}'
    )


__all__ = [
    "PUBLIC_DATA",
    "PUBLIC_EVENTS_VERSION",
    "PUBLIC_EVENT_TYPES",
    "PUBLIC_FORMS",
    "Internal",
    "Public",
    "PublicEvent",
    "PublicOrganization",
    "PublicSubject",
    "form_of",
    "organization_id_of",
    "public_body",
    "public_form",
    "rfc3339",
]
