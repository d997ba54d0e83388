"""Command models: every input is validated here, before any aggregate is touched.

``validate(Model, **fields)`` turns pydantic's errors into one
:class:`~a4c_domain.errors.InvalidCommand` naming each bad field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
)

from a4c_domain.errors import InvalidCommand
from a4c_domain.redaction import redact
from a4c_domain.scope import ScopeField

# Labels that would shadow infrastructure names under the organizations' zone.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "auth", "autoconfig", "autodiscover", "cdn", "dns",
        "docs", "ftp", "help", "imap", "localhost", "login", "mail", "mx", "ns",
        "ns1", "ns2", "pop", "pop3", "root", "smtp", "static", "status", "support",
        "test", "webmail", "www",
    }
)  # fmt: skip

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,62}$")
# What TokenIssuer produces: 32 bytes, URL-safe base64 without padding.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _no_control_chars(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value):
        raise ValueError("must not contain control or unassigned characters")
    return value


def _slug(value: str) -> str:
    if value != value.lower():
        raise ValueError("must be lower-case")
    if not _LABEL.fullmatch(value):
        raise ValueError(
            "must be a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'"
        )
    if value[2:4] == "--":
        raise ValueError("must not have '--' in positions 3-4 (reserved for IDNA)")
    if value in RESERVED_SLUGS:
        raise ValueError(f"{value!r} is reserved")
    return value


def _hostname(value: str) -> str:
    name = value.lower().rstrip(".")
    if len(name) > 253:
        raise ValueError("must be at most 253 characters")
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError("must be a fully qualified host name of DNS labels")
    return name


def _email(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    # Identity is case-insensitive in practice; the ID of an invitation depends on it.
    return result.normalized.lower()


def _tags(value: list[str]) -> list[str]:
    for tag in value:
        if not _TAG.fullmatch(tag):
            raise ValueError(
                f"tag {tag[:70]!r} must be 1-63 of a-z, 0-9, '_', '.', ':', '-' "
                "starting with a letter or digit"
            )
    return sorted(set(value))


def _token_shape(value: SecretStr) -> SecretStr:
    # Anything else cannot be a token; refusing it here keeps junk (control characters,
    # huge strings) away from the comparison. The message never echoes the input.
    if not _TOKEN.fullmatch(value.get_secret_value()):
        raise ValueError("must be the 43-character token from the invitation link")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must be timezone-aware")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control_chars),
]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control_chars),
]
REASON_MAX_LENGTH = 500
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=REASON_MAX_LENGTH),
    AfterValidator(_no_control_chars),
]


def _redacted(value: str) -> str:
    return redact(value, limit=REASON_MAX_LENGTH)


# Text from outside (a provider's error) recorded on an event: checked as any reason
# (too long or with control characters: refused), then stored without a token or an
# accept link whatever the caller did (defence in depth).
FailureReason = Annotated[Reason, AfterValidator(_redacted)]
Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_no_control_chars),
]
Slug = Annotated[str, StringConstraints(max_length=63), AfterValidator(_slug)]
Hostname = Annotated[str, StringConstraints(max_length=254), AfterValidator(_hostname)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
Tags = Annotated[list[str], Field(max_length=20), AfterValidator(_tags)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
StepName = Annotated[Identifier, StringConstraints(max_length=100)]
# A presented invitation token: a str (or pydantic's SecretStr) of the issued shape.
Token = Annotated[SecretStr, AfterValidator(_token_shape)]
Role = Literal["owner", "admin", "member", "viewer"]
OrganizationType = Literal["provider", "partner"]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class RegisterOrganization(Command):
    name: Name
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
