"""The a4c exception tree — every error a caller can meet, documented in one place.

::

    A4CError                        root of everything a4c raises on purpose
    ├── InvalidCommand              bad input; ``errors`` names each field and problem
    ├── ConfigurationError          a setting is missing or wrong (names the variable)
    ├── NotFound
    │   ├── OrganizationNotFound
    │   └── InvitationNotFound
    ├── Conflict                    same natural key, different content
    │   ├── OrganizationConflict    e.g. the slug is registered with another name
    │   └── InvitationConflict
    ├── RuleViolation               the command breaks an aggregate invariant
    │   ├── OrganizationInactive    deactivated: only compensation is allowed
    │   ├── DNSNotConfigured
    │   ├── DNSNotVerified          no activation before verification
    │   ├── DNSAlreadyRemoved       DNS removal (a compensation) is final
    │   ├── InvitationNotPending    already accepted / revoked / expired
    │   │   ├── InvitationAlreadyAccepted
    │   │   ├── InvitationRevoked
    │   │   └── InvitationExpired
    │   ├── InvitationNotYetExpired
    │   └── InvalidToken
    └── ConcurrencyError            lost a race on an aggregate; retry the command

``retryable`` tells an orchestrator (Temporal activities) whether trying the same
command again can succeed: only ``ConcurrencyError`` is, everything else is a
permanent answer for that input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from uuid import UUID


class A4CError(Exception):
    """Root of the a4c exception tree."""

    retryable: ClassVar[bool] = False


class InvalidCommand(A4CError, ValueError):
    """A command's input failed validation; nothing was stored.

    ``errors`` is a list of ``{"field": ..., "message": ...}`` dicts, one per problem.
    """

    def __init__(self, command: str, errors: Sequence[Mapping[str, str]]) -> None:
        self.command = command
        self.errors = [dict(e) for e in errors]
        details = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
        super().__init__(f"invalid {command}: {details}")

    @property
    def fields(self) -> list[str]:
        return [e["field"] for e in self.errors]


class ConfigurationError(A4CError):
    """A configuration value is missing or invalid."""


class NotFound(A4CError, LookupError):
    """The aggregate does not exist."""


def _named(key: UUID | str) -> str:
    """An id as is; a natural key (a slug) quoted, the way the caller typed it."""
    return str(key) if isinstance(key, UUID) else repr(key)


class OrganizationNotFound(NotFound):
    """``key``: the id, or the slug when the caller looked it up by slug."""

    def __init__(self, key: UUID | str) -> None:
        self.key = key
        super().__init__(f"organization {_named(key)} not found")


class InvitationNotFound(NotFound):
    def __init__(self, key: UUID | str) -> None:
        self.key = key
        super().__init__(f"invitation {_named(key)} not found")


class Conflict(A4CError):
    """The natural key already exists with different content."""

    def __init__(self, message: str, differences: Mapping[str, tuple[Any, Any]]) -> None:
        self.differences = dict(differences)
        super().__init__(message)


class OrganizationConflict(Conflict):
    pass


class InvitationConflict(Conflict):
    pass


class RuleViolation(A4CError):
    """The command is well-formed but the aggregate's invariants forbid it now."""


class OrganizationInactive(RuleViolation):
    pass


class DNSNotConfigured(RuleViolation):
    pass


class DNSNotVerified(RuleViolation):
    pass


class DNSAlreadyRemoved(RuleViolation):
    """DNS was removed (a compensation); a different record cannot be configured now."""


class InvitationNotPending(RuleViolation):
    pass


class InvitationAlreadyAccepted(InvitationNotPending):
    pass


class InvitationRevoked(InvitationNotPending):
    pass


class InvitationExpired(InvitationNotPending):
    pass


class InvitationNotYetExpired(RuleViolation):
    pass


class InvalidToken(RuleViolation):
    """The presented token does not match the invitation's current token."""


class ConcurrencyError(A4CError):
    """Another writer changed the aggregate first; the command can be retried."""

    retryable: ClassVar[bool] = True
