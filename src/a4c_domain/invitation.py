"""The Invitation aggregate: invited → e-mail sent / failed → accepted | revoked | expired.

Only the hash of the current token is recorded. Re-sending moves to a new token
generation (the old link stops working) and a new expiry.

An invitation ends with its organization: deactivating the organization revokes its
pending invitations (reason ``ORGANIZATION_DEACTIVATED``) in the same save, and accept
refuses with ``OrganizationInactive`` once the organization is deactivated. A new
generation for the same e-mail supersedes the older pending ones (revoked with
``superseded_reason``, in the same save); see ``OnboardingApplication.invite``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import event

from a4c_domain.base import DomainAggregate
from a4c_domain.errors import (
    IdentityMismatch,
    InvalidToken,
    InvitationAlreadyAccepted,
    InvitationConflict,
    InvitationExpired,
    InvitationNotPending,
    InvitationNotYetExpired,
    InvitationRevoked,
    OrganizationInactive,
    SSORequired,
)
from a4c_domain.identity import SignInIdentity
from a4c_domain.ids import invitation_id
from a4c_domain.tokens import token_matches

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
EmailStatus = Literal["not_sent", "sent", "failed"]

# Worker clocks drift; an expiry issued a little early by a timer is still an expiry.
EXPIRY_CLOCK_TOLERANCE = timedelta(seconds=5)

# Revoke reasons the domain itself records.
ORGANIZATION_DEACTIVATED = "organization deactivated"
ORGANIZATION_OFFBOARDED = "organization offboarded"


def superseded_reason(generation: int) -> str:
    return f"superseded by generation {generation}"


class Invitation(DomainAggregate):
    """One invitation of one e-mail address to one organization."""

    class Invited(DomainAggregate.Created):
        organization_id: UUID
        email: str
        role: str
        first_name: str
        last_name: str
        generation: int
        token_hash: str
        expires_at: datetime

    class EmailSent(DomainAggregate.Event):
        token_generation: int
        message_id: str

    class EmailFailed(DomainAggregate.Event):
        token_generation: int
        reason: str

    class TokenReissued(DomainAggregate.Event):
        token_generation: int
        token_hash: str
        expires_at: datetime

    class Accepted(DomainAggregate.Event):
        # v1 named only the user id; v2 adds the identity they signed in with: the
        # provider's ``issuer`` (None: the development sign-in, or a v1 event) and the
        # ``subject`` there.
        class_version = 2

        user_id: str
        issuer: str | None
        subject: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["issuer"] = None
            state["subject"] = None

    class Revoked(DomainAggregate.Event):
        reason: str

    class Expired(DomainAggregate.Event):
        pass

    @staticmethod
    def create_id(organization_id: UUID, email: str, generation: int) -> UUID:
        return invitation_id(organization_id, email, generation)

    @event(Invited)
    def __init__(
        self,
        organization_id: UUID,
        email: str,
        role: str,
        first_name: str,
        last_name: str,
        generation: int,
        token_hash: str,
        expires_at: datetime,
    ) -> None:
        self.organization_id = organization_id
        self.email = email
        self.role = role
        self.first_name = first_name
        self.last_name = last_name
        self.generation = generation
        self.token_hash = token_hash
        self.token_generation = 1
        self.expires_at = expires_at
        self.status: InvitationStatus = "pending"
        self.email_status: EmailStatus = "not_sent"
        self.message_id: str | None = None
        self.email_error: str | None = None
        self.accepted_by: str | None = None
        self.accepted_issuer: str | None = None
        self.accepted_subject: str | None = None
        self.revoke_reason: str | None = None
        # Every e-mail outcome ever recorded, as (outcome, token generation, detail): a
        # late retry of one is a no-op even after a later outcome or a new generation.
        self.email_outcomes: set[tuple[str, int, str]] = set()

    # --- queries on state -------------------------------------------------------------

    def invitation_differences(
        self, *, role: str, first_name: str, last_name: str
    ) -> dict[str, tuple[Any, Any]]:
        recorded = {"role": self.role, "first_name": self.first_name, "last_name": self.last_name}
        given = {"role": role, "first_name": first_name, "last_name": last_name}
        return {k: (recorded[k], given[k]) for k in recorded if recorded[k] != given[k]}

    # --- commands ---------------------------------------------------------------------

    def record_email_sent(self, token_generation: int, message_id: str) -> None:
        if ("sent", token_generation, message_id) in self.email_outcomes:
            return
        self._require_current_generation(token_generation)
        if self.email_status == "sent" and self.message_id == message_id:
            return
        self._email_sent(token_generation=token_generation, message_id=message_id)

    def record_email_failed(self, token_generation: int, reason: str) -> None:
        if ("failed", token_generation, reason) in self.email_outcomes:
            return
        self._require_current_generation(token_generation)
        if self.email_status == "failed" and self.email_error == reason:
            return
        self._email_failed(token_generation=token_generation, reason=reason)

    def reissue_token(self, token_generation: int, token_hash: str, expires_at: datetime) -> None:
        """Make ``token_generation`` current.

        Idempotent: asking for the current generation, or one already superseded (a late
        retry), is a no-op.
        """
        if token_generation <= self.token_generation:
            return
        self._require_pending(now=None)
        if token_generation != self.token_generation + 1:
            raise InvitationConflict(
                f"invitation {self.id} is at token generation {self.token_generation}; "
                f"cannot move to {token_generation}",
                {"token_generation": (self.token_generation, token_generation)},
            )
        self._token_reissued(
            token_generation=token_generation, token_hash=token_hash, expires_at=expires_at
        )

    def accept(
        self,
        token: str,
        user_id: str,
        now: datetime,
        *,
        organization_active: bool,
        identity: SignInIdentity | None = None,
        required_issuer: str | None = None,
    ) -> None:
        """Accept with the current token, while the organization is not deactivated.

        ``identity``: who signed in (its address, when given, must be the invited one);
        ``required_issuer``: the provider the organization's single sign-on makes this
        invitee sign in through (None: any sign-in the platform offers).
        """
        # The token is checked first so nobody learns an invitation's state without it.
        if not token_matches(token, self.token_hash):
            raise InvalidToken(f"the token does not match invitation {self.id}")
        if not organization_active:
            raise OrganizationInactive(
                f"invitation {self.id} belongs to an organization that is deactivated"
            )
        if self.status == "accepted":
            if self.accepted_by == user_id:
                return
            raise InvitationAlreadyAccepted(f"invitation {self.id} was already accepted")
        self._require_pending(now=now)
        if identity is not None and identity.email != self.email:
            raise IdentityMismatch(self.id)
        issuer = identity.issuer if identity is not None else None
        if required_issuer is not None and issuer != required_issuer:
            raise SSORequired(self.id, required_issuer)
        self._accepted(
            user_id=user_id,
            issuer=issuer,
            subject=identity.subject if identity is not None else None,
        )

    def revoke(self, reason: str) -> None:
        """End a pending invitation; revoking a revoked one again (any reason) is a no-op."""
        if self.status == "revoked":
            return
        self._require_pending(now=None)
        self._revoked(reason=reason)

    def expire(self, now: datetime) -> None:
        if self.status == "expired":
            return
        self._require_pending(now=None)
        if now + EXPIRY_CLOCK_TOLERANCE < self.expires_at:
            raise InvitationNotYetExpired(
                f"invitation {self.id} expires at {self.expires_at.isoformat()}"
            )
        self._expired()

    def _require_pending(self, now: datetime | None) -> None:
        if self.status == "accepted":
            raise InvitationAlreadyAccepted(f"invitation {self.id} was already accepted")
        if self.status == "revoked":
            raise InvitationRevoked(f"invitation {self.id} was revoked")
        if self.status == "expired" or (now is not None and now >= self.expires_at):
            raise InvitationExpired(f"invitation {self.id} has expired")
        if self.status != "pending":  # pragma: no cover - exhaustive above
            raise InvitationNotPending(f"invitation {self.id} is {self.status}")

    def _require_current_generation(self, token_generation: int) -> None:
        if token_generation != self.token_generation:
            raise InvitationConflict(
                f"invitation {self.id} is at token generation {self.token_generation}, "
                f"not {token_generation}",
                {"token_generation": (self.token_generation, token_generation)},
            )

    # --- events: bodies only assign ---------------------------------------------------

    @event(EmailSent)
    def _email_sent(self, token_generation: int, message_id: str) -> None:
        self.email_status = "sent"
        self.message_id = message_id
        self.email_error = None
        self.email_outcomes.add(("sent", token_generation, message_id))

    @event(EmailFailed)
    def _email_failed(self, token_generation: int, reason: str) -> None:
        self.email_status = "failed"
        self.email_error = reason
        self.email_outcomes.add(("failed", token_generation, reason))

    @event(TokenReissued)
    def _token_reissued(self, token_generation: int, token_hash: str, expires_at: datetime) -> None:
        self.token_generation = token_generation
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.email_status = "not_sent"
        self.message_id = None
        self.email_error = None

    @event(Accepted)
    def _accepted(self, user_id: str, issuer: str | None, subject: str | None) -> None:
        self.status = "accepted"
        self.accepted_by = user_id
        self.accepted_issuer = issuer
        self.accepted_subject = subject

    @event(Revoked)
    def _revoked(self, reason: str) -> None:
        self.status = "revoked"
        self.revoke_reason = reason

    @event(Expired)
    def _expired(self) -> None:
        self.status = "expired"
