"""The a4c exception tree — every error a caller can meet, documented in one place.

::

    A4CError                        root of everything a4c raises on purpose
    ├── InvalidCommand              bad input; ``errors`` names each field and problem
    ├── InvalidScope                a query's organization_id is no UUID nor ALL_ORGANIZATIONS
    ├── ConfigurationError          a setting is missing or wrong (names the variable)
    ├── NotFound
    │   ├── OrganizationNotFound
    │   ├── InvitationNotFound      also another organization's invitation (same text)
    │   ├── SSOConnectionNotFound   the organization has configured no single sign-on
    │   └── EmailDomainNotFound     the organization asked for no such e-mail domain
    ├── Conflict                    same natural key, different content
    │   ├── OrganizationConflict    e.g. the slug is registered with another name
    │   ├── InvitationConflict
    │   ├── DomainTaken             the domain (fqdn) belongs to another organization
    │   └── EmailDomainTaken        the e-mail domain belongs to another organization
    ├── RuleViolation               the command breaks an aggregate invariant
    │   ├── OrganizationInactive    deactivated: only compensation is allowed, and
    │   │                           none of its invitations can be accepted
    │   ├── DNSNotConfigured
    │   ├── DNSNotVerified          no activation before verification
    │   ├── DNSAlreadyRemoved       DNS removal (a compensation) is final
    │   ├── DomainOutsideZone       the zone apex, or a name outside the zone (worker)
    │   ├── InvitationNotPending    already accepted / revoked / expired
    │   │   ├── InvitationAlreadyAccepted
    │   │   ├── InvitationRevoked
    │   │   └── InvitationExpired
    │   ├── InvitationNotYetExpired
    │   ├── InvalidToken
    │   ├── SSORequired             the invitee must sign in through the organization's
    │   │                           own provider (its single sign-on covers the address)
    │   ├── IdentityMismatch        who signed in is not the invited address
    │   ├── SSOConfigurationNotPending  that SSO configuration is not the one being tried
    │   └── SSONotTested            no activation before a test sign-in
    ├── ConcurrencyError            lost a race on an aggregate; retry the command
    ├── StoreUnavailable            the event store stayed out of reach (a failover
    │                               longer than the command waits); retry the command
    └── TooManyAttempts             too many wrong tokens for one invitation; wait
        ├── ResendTooSoon           an invitation was mailed moments ago; wait
        ├── TooManyResends          an invitation's re-sends are used up
        ├── TooManyInvitations      an organization's invitations in the last hour
        └── TooManyPendingInvitations  an organization's pending invitations

An organization's identity provider refused by its checks is ``a4c_sso.errors``'s
``ProviderRefused`` tree (under ``A4CError`` too; it lives with the checks).

``retryable`` tells an orchestrator (Temporal activities) whether trying the same
command again can succeed: only ``ConcurrencyError`` and ``StoreUnavailable`` are,
everything else is a permanent answer for that input.
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


class InvalidScope(A4CError, TypeError):
    """A query's ``organization_id`` is neither a UUID nor ``ALL_ORGANIZATIONS``.

    ``None`` in particular: it once meant "every organization"; that is now asked for
    explicitly, so a forgotten scope fails instead of reading every tenant.
    """

    def __init__(self, given: object) -> None:
        super().__init__(
            "organization_id must be an organization's UUID or ALL_ORGANIZATIONS, "
            f"not {type(given).__name__}"
        )


class ConfigurationError(A4CError):
    """A configuration value is missing or invalid."""


class StoreUnreachable(ConfigurationError):
    """The event store's database did not answer; the message names the variable to check."""


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


class SSOConnectionNotFound(NotFound):
    """``key``: the organization's id (its connection's is derived from it)."""

    def __init__(self, key: UUID) -> None:
        self.key = key
        super().__init__(f"organization {key} has no single sign-on configured")


class EmailDomainNotFound(NotFound):
    """The organization never asked to verify this e-mail domain (another organization's
    request is exactly as "not found")."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        super().__init__(f"e-mail domain {domain!r} not found")


class WebhookEndpointNotFound(NotFound):
    """``key``: the endpoint's id, or its name. Another owner's endpoint is exactly as
    "not found" as one never created."""

    def __init__(self, key: UUID | str) -> None:
        self.key = key
        super().__init__(f"webhook endpoint {_named(key)} not found")


class Conflict(A4CError):
    """The natural key already exists with different content."""

    def __init__(self, message: str, differences: Mapping[str, tuple[Any, Any]]) -> None:
        self.differences = dict(differences)
        super().__init__(message)


class OrganizationConflict(Conflict):
    pass


class InvitationConflict(Conflict):
    pass


class WebhookEndpointConflict(Conflict):
    pass


class DomainTaken(Conflict):
    """The domain is claimed by another organization; nothing was stored.

    The message names the domain only: which organization holds it is another
    tenant's business.
    """

    def __init__(self, fqdn: str) -> None:
        self.fqdn = fqdn
        super().__init__(f"domain {fqdn} is already taken by another organization", {})


class EmailDomainTaken(Conflict):
    """The e-mail domain is claimed by another organization; nothing was stored. The
    message names the domain only (which organization holds it is that one's business)."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        super().__init__(f"e-mail domain {domain} is already taken by another organization", {})


class RuleViolation(A4CError):
    """The command is well-formed but the aggregate's invariants forbid it now."""


class OrganizationInactive(RuleViolation):
    pass


class WebhookEndpointDeleted(RuleViolation):
    """The endpoint was deleted: only creating it again (same name) brings it back."""


class DNSNotConfigured(RuleViolation):
    pass


class DNSNotVerified(RuleViolation):
    pass


class DNSAlreadyRemoved(RuleViolation):
    """DNS was removed (a compensation); a different record cannot be configured now."""


class DomainOutsideZone(RuleViolation):
    """An organization's domain must be a name strictly below the worker's zone."""

    def __init__(self, fqdn: str, zone: str) -> None:
        self.fqdn = fqdn
        self.zone = zone
        where = "is the apex of" if fqdn == zone else "is not inside"
        super().__init__(f"domain {fqdn} {where} the zone {zone}; use a name below it")


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


class SSORequired(RuleViolation):
    """The invitation's address is in an e-mail domain its organization verified, and the
    organization's single sign-on is active: only a sign-in through that provider (its
    ``issuer``) may accept it; the platform's sign-in and the dev sign-in may not."""

    def __init__(self, invitation_id: UUID, issuer: str) -> None:
        self.invitation_id = invitation_id
        self.issuer = issuer
        super().__init__(
            f"invitation {invitation_id} must be accepted by signing in through the "
            f"organization's single sign-on ({issuer})"
        )


class IdentityMismatch(RuleViolation):
    """The person who signed in is not the invited address (no address in the text)."""

    def __init__(self, invitation_id: UUID) -> None:
        self.invitation_id = invitation_id
        super().__init__(
            f"the address signed in with is not the one invitation {invitation_id} was sent to"
        )


class SSOConfigurationNotPending(RuleViolation):
    """The SSO configuration named (its ``generation``) is not the one being tried: a
    newer one replaced it, or it was abandoned; the connection in force is unchanged."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        super().__init__(
            f"SSO configuration {generation} is not the one being tried (replaced or abandoned)"
        )


class SSONotTested(RuleViolation):
    """An SSO configuration is activated only after a test sign-in through it."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        super().__init__(f"SSO configuration {generation} has not passed a test sign-in yet")


class ConcurrencyError(A4CError):
    """Another writer changed the aggregate first; the command can be retried."""

    retryable: ClassVar[bool] = True


class StoreUnavailable(A4CError):
    """The event store could not be reached, or a connection was lost, for longer than
    a command waits (a4c_domain.lost_connection). Retrying the command is safe: it is
    applied at most once, whatever happened to the lost commit."""

    retryable: ClassVar[bool] = True


def _wait(retry_after: float) -> str:
    return f"try again in {max(1, round(retry_after))} s"


class TooManyAttempts(A4CError):
    """Too many wrong tokens were presented for one invitation; wait ``retry_after`` seconds.

    Not ``retryable``: the same command fails the same way until the window passes. The
    subclasses are the platform's other limits (HTTP 429 with ``Retry-After``, each its
    own problem type); all carry ``retry_after``.
    """

    def __init__(self, invitation: UUID | str, retry_after: float) -> None:
        self._refuse(f"too many wrong tokens for invitation {invitation}", retry_after)
        self.invitation = invitation

    def _refuse(self, what: str, retry_after: float) -> None:
        self.retry_after = retry_after
        A4CError.__init__(self, f"{what}; {_wait(retry_after)}")


class ResendTooSoon(TooManyAttempts):
    """A re-send within the cooldown that follows the invitation's last mail."""

    def __init__(self, invitation: UUID | str, retry_after: float) -> None:
        self._refuse(f"invitation {invitation} was mailed moments ago", retry_after)
        self.invitation = invitation


class TooManyResends(TooManyAttempts):
    """The invitation was re-sent as often as allowed; ``retry_after`` is until it expires
    (then the address can be invited again, subject to the organization's limits)."""

    def __init__(self, invitation: UUID | str, limit: int, retry_after: float) -> None:
        self._refuse(f"invitation {invitation} was re-sent {limit} times already", retry_after)
        self.invitation = invitation
        self.limit = limit


class TooManyInvitations(TooManyAttempts):
    """The organization issued as many invitations in the last hour as allowed."""

    def __init__(self, organization: UUID | str, limit: int, retry_after: float) -> None:
        self._refuse(
            f"organization {_named(organization)} issued {limit} invitations in the last hour",
            retry_after,
        )
        self.organization = organization
        self.limit = limit


class TooManyPendingInvitations(TooManyAttempts):
    """The organization has as many pending invitations as allowed; ``retry_after`` is
    until the first of them expires (revoking one frees a place at once)."""

    def __init__(self, organization: UUID | str, limit: int, retry_after: float) -> None:
        self._refuse(
            f"organization {_named(organization)} has {limit} pending invitations; "
            "revoke one, or wait until one is accepted or expires",
            retry_after,
        )
        self.organization = organization
        self.limit = limit
