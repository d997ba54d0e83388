"""What the ``/v1`` webhook endpoint routes take and answer.

Requests reuse the domain's field types (endpoint name, URL, description, the public
event types), so a bad field is refused with the words the domain would use, before
anything is sent. Answers never hold a secret, sealed or not, except the two that made
one: a create that created (201) and a rotation, each once (:class:`WebhookEndpointSecret`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BeforeValidator, ConfigDict, Field, JsonValue, WithJsonSchema

from a4c_api.v1.models import Answer, Incoming
from a4c_domain.commands import Reason, Slug
from a4c_domain.fields import DESCRIPTION_MAX_LENGTH, Description, EndpointName, WebhookURL
from a4c_domain.webhook_command_models import EventTypes

DAY_SECONDS = 86_400
MAX_OVERLAP_SECONDS = 7 * DAY_SECONDS
_ALL_EVENTS = "Public event types to deliver; null (or left out): every type"
# A public address as its URL: the example is sent as it is by the contract test, where
# no name resolves.
_EXAMPLE: dict[str, JsonValue] = {
    "name": "provisioning",
    "url": "https://93.184.215.14/a4c",
    "event_types": ["organization.activated", "invitation.accepted"],
    "description": "the provisioning service",
}
# Description's exact rule for a generated client or fuzzer: what strip_whitespace
# removes around it, then nothing or 1-500 characters without control or unassigned
# ones, neither end a space (the shape of a4c_domain.fields' text patterns, empty allowed).
_STRIPPED = r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
_DESCRIPTION_PATTERN = (
    rf"^{_STRIPPED}(?=[\s\S]{{0,{DESCRIPTION_MAX_LENGTH}}}{_STRIPPED}$)"
    rf"(?:[^\s\p{{C}}](?:[^\p{{C}}]*[^\s\p{{C}}])?)?{_STRIPPED}$"
)
EndpointDescription = Annotated[
    Description,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DESCRIPTION_PATTERN,
            "description": f"0-{DESCRIPTION_MAX_LENGTH} characters once surrounding "
            "whitespace is removed, no control or unassigned characters",
        }
    ),
]
_URL_RULES = (
    "Where webhooks are POSTed: https (http only in development), a host whose every "
    "address is public (unless the service allows private addresses); checked when set"
)


class EndpointSettings(Incoming):
    """A new endpoint of an organization: it gets that organization's events only. The
    same request again answers with the endpoint (200, no secret); another one for a
    name already taken is a conflict naming what differs."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [_EXAMPLE]}
    )

    name: EndpointName
    url: WebhookURL = Field(description=_URL_RULES)
    event_types: EventTypes | None = Field(default=None, description=_ALL_EVENTS)
    description: EndpointDescription = ""


class PlatformEndpointSettings(EndpointSettings):
    """A new endpoint of the platform (operators): every organization's events, or one
    organization's when ``organization`` names it."""

    organization: Slug | None = Field(
        default=None, description="Only this organization's events (its slug); null: every one"
    )


class EndpointChanges(Incoming):
    """What to change; a field left out (or null, for ``url`` and ``description``)
    stays as it is. ``event_types`` null: every type from now on."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"event_types": ["organization.deactivated"]}]},
    )

    url: WebhookURL | None = Field(default=None, description=_URL_RULES)
    event_types: EventTypes | None = Field(default=None, description=_ALL_EVENTS)
    description: EndpointDescription | None = None


class PlatformEndpointChanges(EndpointChanges):
    """``organization`` null: every organization's events from now on."""

    organization: Slug | None = Field(
        default=None, description="Only this organization's events (its slug); null: every one"
    )


class DisableBody(Incoming):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"reason": "receiver under maintenance"}]},
    )

    reason: Reason = "disabled by request"


def _not_a_bool(value: Any) -> Any:
    """JSON's ``false`` is no number of seconds (pydantic would take it as 0)."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number of seconds")
    return value


class RotateBody(Incoming):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"overlap_seconds": 3600}]}
    )

    overlap_seconds: Annotated[int, BeforeValidator(_not_a_bool)] = Field(
        default=DAY_SECONDS,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the previous secret still signs too (both signatures are "
        "sent), so receivers can switch over: at most 7 days",
    )


EndpointStatus = Literal["enabled", "disabled", "deleted"]


class WebhookEndpoint(Answer):
    """A webhook endpoint: never its secret."""

    id: UUID
    name: str
    owner: str | None = Field(description="The owning organization's slug; null: the platform's")
    url: str
    event_types: list[str] | None = Field(description="null: every public event type")
    organization: str | None = Field(
        description="Whose events it gets (a slug); null: every organization's (platform only)"
    )
    description: str
    status: EndpointStatus
    disabled_reason: str | None
    disabled_automatically: bool = Field(
        description="Disabled by the delivery daemon (failing for days, or 410 Gone)"
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointSecret(WebhookEndpoint):
    """The endpoint and its new signing secret, shown this once and never again."""

    secret: str = Field(
        description="The signing secret (whsec_...): store it now, it is never shown again"
    )


class RotatedWebhookEndpoint(WebhookEndpointSecret):
    previous_secret_expires_at: datetime = Field(
        description="Until then the previous secret signs each delivery too"
    )


class WebhookEndpointList(Answer):
    webhook_endpoints: list[WebhookEndpoint]
