"""Command models: every input is validated here, before any aggregate is touched.

``validate(Model, **fields)`` turns pydantic's errors into one
:class:`~a4c_domain.errors.InvalidCommand` naming each bad field. The field types the
models are made of live in :mod:`a4c_domain.fields` and are importable from here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from a4c_domain.errors import InvalidCommand
from a4c_domain.fields import (
    HOSTNAME_LENGTH_RULE,
    REASON_MAX_LENGTH,
    RESERVED_SLUGS,
    AwareDatetime,
    Email,
    FailureReason,
    Hostname,
    Identifier,
    Name,
    OrganizationMailKind,
    OrganizationName,
    OrganizationType,
    PersonName,
    Reason,
    RecordedPersonName,
    Role,
    Slug,
    StepName,
    Tags,
    Token,
    any_case,
    hostname,
    hostname_pattern,
    inside_zone,
)
from a4c_domain.identity import SignInIdentity
from a4c_domain.scope import ScopeField

# The field types are re-exported: callers import them from here.
__all__ = [
    "FIRST_GENERATION",
    "HOSTNAME_LENGTH_RULE",
    "MAX_GENERATION",
    "REASON_MAX_LENGTH",
    "RESERVED_SLUGS",
    "AcceptInvitation",
    "ActivateOrganization",
    "AwareDatetime",
    "ClaimDomain",
    "Command",
    "ConfigureDNS",
    "DeactivateOrganization",
    "DomainName",
    "Email",
    "ExpireInvitation",
    "FailureReason",
    "Hostname",
    "Identifier",
    "InvitationCommand",
    "Invite",
    "Name",
    "OffboardOrganization",
    "OrganizationCommand",
    "OrganizationMailKind",
    "OrganizationName",
    "OrganizationType",
    "PersonName",
    "Reason",
    "RecordEmailFailed",
    "RecordEmailSent",
    "RecordOrganizationEmailSent",
    "RecordedPersonName",
    "RegisterOrganization",
    "ReissueToken",
    "RemoveDNS",
    "RevokeInvitation",
    "Role",
    "Slug",
    "StepName",
    "TCommand",
    "Tags",
    "Token",
    "VerifyDNS",
    "any_case",
    "field_errors",
    "hostname",
    "hostname_pattern",
    "inside_zone",
    "validate",
    "worded",
]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class RegisterOrganization(Command):
    name: OrganizationName
    slug: Slug
    org_type: OrganizationType
    parent_id: UUID | None = None
    tags: Tags = Field(default_factory=list)
    domain: Hostname | None = None


class ConfigureDNS(Command):
    organization_id: UUID
    fqdn: Hostname
    target: Hostname
    record_id: Identifier


class ClaimDomain(Command):
    organization_id: UUID
    fqdn: Hostname


class DomainName(Command):
    fqdn: Hostname


class OrganizationCommand(Command):
    organization_id: UUID


class VerifyDNS(OrganizationCommand):
    pass


class RemoveDNS(OrganizationCommand):
    pass


class ActivateOrganization(OrganizationCommand):
    pass


class DeactivateOrganization(OrganizationCommand):
    reason: Reason
    failed_step: StepName | None = None


class RecordOrganizationEmailSent(OrganizationCommand):
    kind: OrganizationMailKind
    message_id: Identifier


class OffboardOrganization(OrganizationCommand):
    reason: Reason


# Generations of one address's invitation (each a new invitation id).
FIRST_GENERATION = 1
MAX_GENERATION = 1000


class Invite(Command):
    organization_id: UUID
    email: Email
    role: Role
    first_name: PersonName
    last_name: PersonName
    generation: int = Field(default=FIRST_GENERATION, ge=FIRST_GENERATION, le=MAX_GENERATION)
    expires_at: AwareDatetime | None = None


class InvitationCommand(Command):
    """A command on one invitation, by a caller acting for ``organization_id``.

    ``organization_id`` is required: the invitation's organization, or
    ``ALL_ORGANIZATIONS`` for a caller acting for the platform (see a4c_domain.scope).
    """

    organization_id: ScopeField
    invitation_id: UUID


class RecordEmailSent(InvitationCommand):
    token_generation: int = Field(ge=1)
    message_id: Identifier


class RecordEmailFailed(InvitationCommand):
    token_generation: int = Field(ge=1)
    reason: FailureReason


class ReissueToken(InvitationCommand):
    token_generation: int = Field(ge=2)
    expires_at: AwareDatetime | None = None


class AcceptInvitation(InvitationCommand):
    token: Token
    user_id: Identifier
    # Who signed in (None: a caller of the 0.4 API, trusted as before, which an
    # organization's single sign-on then refuses).
    identity: SignInIdentity | None = None


class RevokeInvitation(InvitationCommand):
    reason: Reason


class ExpireInvitation(InvitationCommand):
    pass


TCommand = TypeVar("TCommand", bound=Command)


def validate(model: type[TCommand], **fields: Any) -> TCommand:
    """Build ``model`` from ``fields`` or raise one ``InvalidCommand`` naming each field."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise InvalidCommand(model.__name__, field_errors(exc)) from None


# pydantic's wording for a few error types, said the way a caller reads a refusal.
_PLAIN = {"missing": "is required", "extra_forbidden": "is not a field of this command"}
# "Input should be a valid UUID" -> "must be a valid UUID"; likewise String/List/... should.
_SHOULD = re.compile(r"^(?:Input|String|List|Value|Dictionary|Tuple|Set|Date|Datetime) should ")


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """``{"field", "message"}`` per problem, worded for the caller ("reason: must not be empty").

    Never the input (it may be a secret) nor pydantic's internals (validator names, error
    type codes, documentation URLs).
    """
    return worded(exc.errors(include_input=False, include_url=False))


def worded(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """:func:`field_errors` of pydantic's error dicts however they were raised (the HTTP
    service gets them from FastAPI's request validation). Reads only ``loc``, ``type``,
    ``msg`` and ``ctx``: never the input."""
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "(command)",
            "message": _message(err["type"], err["msg"], err.get("ctx") or {}),
        }
        for err in errors
    ]


def _message(kind: str, text: str, ctx: dict[str, Any]) -> str:
    if kind in _PLAIN:
        return _PLAIN[kind]
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])  # our own validators' words, without "Value error, "
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    return _SHOULD.sub("must ", text)
