"""The webhook endpoint command models (a4c_domain.webhook_commands issues them).

Apart from :mod:`a4c_domain.commands` because the event-type filter is checked against
the public event types (:mod:`a4c_domain.public_events`, which itself builds on the
field types): keeping it here keeps that module free of the aggregates' public forms.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, Field, ValidationInfo, WithJsonSchema, field_validator

from a4c_domain.commands import Command, Reason
from a4c_domain.fields import AwareDatetime, Description, EndpointName, SealedSecret, WebhookURL
from a4c_domain.public_events import PUBLIC_EVENT_TYPES
from a4c_domain.scope import ScopeField

__all__ = [
    "AddWebhookEndpoint",
    "ChangeWebhookEndpoint",
    "DeleteWebhookEndpoint",
    "Description",
    "DisableWebhookEndpoint",
    "EnableWebhookEndpoint",
    "EndpointName",
    "EventTypes",
    "RotateWebhookSecret",
    "SealedSecret",
    "WebhookEndpointCommand",
    "WebhookURL",
    "owner_organization_refused",
]


def _event_types(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - PUBLIC_EVENT_TYPES)
    if unknown:
        shown = ", ".join(repr(t[:70]) for t in unknown[:5])
        raise ValueError(f"unknown public event type(s) {shown}; see PUBLIC_EVENT_TYPES")
    return sorted(set(value))  # one spelling of a filter: duplicates dropped, sorted


# A filter on public event types (``None``, in a model: every type).
EventTypes = Annotated[
    list[str],
    Field(min_length=1, max_length=len(PUBLIC_EVENT_TYPES)),
    AfterValidator(_event_types),
    WithJsonSchema(
        {
            "type": "array",
            "minItems": 1,
            "maxItems": len(PUBLIC_EVENT_TYPES),
            "items": {"type": "string", "enum": sorted(PUBLIC_EVENT_TYPES)},
            "description": "Public event types (duplicates are dropped, the rest sorted)",
        }
    ),
]

OWNER_ORGANIZATION = (
    "must be empty or the owner's own id: an organization's endpoint gets only its own events"
)


def owner_organization_refused(owner_id: UUID | None, organization_id: UUID | None) -> bool:
    """Whether an endpoint of ``owner_id`` may not filter on ``organization_id``."""
    return owner_id is not None and organization_id not in (None, owner_id)


class AddWebhookEndpoint(Command):
    owner_id: UUID | None
    name: EndpointName
    url: WebhookURL
    event_types: EventTypes | None
    organization_id: UUID | None
    description: Description = ""
    secret: SealedSecret

    @field_validator("organization_id")
    @classmethod
    def _owner_organization(cls, value: UUID | None, info: ValidationInfo) -> UUID | None:
        if owner_organization_refused(info.data.get("owner_id"), value):
            raise ValueError(OWNER_ORGANIZATION)
        return value


class WebhookEndpointCommand(Command):
    """A command on one endpoint by a caller acting for ``scope``: the owning
    organization's id, or ``ALL_ORGANIZATIONS`` (operators, the delivery daemon)."""

    scope: ScopeField
    endpoint_id: UUID


class ChangeWebhookEndpoint(WebhookEndpointCommand):
    url: WebhookURL
    event_types: EventTypes | None
    organization_id: UUID | None
    description: Description


class RotateWebhookSecret(WebhookEndpointCommand):
    secret: SealedSecret
    previous_secret_expires_at: AwareDatetime


class DisableWebhookEndpoint(WebhookEndpointCommand):
    reason: Reason
    automatic: bool = False


class EnableWebhookEndpoint(WebhookEndpointCommand):
    pass


class DeleteWebhookEndpoint(WebhookEndpointCommand):
    pass
