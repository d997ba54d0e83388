"""What an InvitationWorkflow knows about its invitation, and hands to its next run.

Plain state (no activity, no timer): what ``status`` answers, and what continue-as-new
carries over (:meth:`InvitationBook.carry`, :meth:`InvitationBook.resume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from a4c_worker.workflows.models import InvitationCarry, InvitationState, InvitationStatus


@dataclass
class InvitationBook:
    state: InvitationState = "pending"
    generation: int = 1
    expires_at: datetime | None = None
    emails_sent: int = 0
    reminder_sent: bool = False
    accepted_by: str | None = None
    # The provider and subject of the sign-in that accepted (None: the dev sign-in).
    accepted_issuer: str | None = None
    accepted_subject: str | None = None
    last_error: str | None = None
    # proof_check() of the current token's proof; None until fetched.
    proof_check: str | None = None
    # Re-sends so far, and when the last invitation mail went out (the cooldown's start).
    resends: int = 0
    last_mailed_at: datetime | None = None

    def status(self, invitation_id: UUID) -> InvitationStatus:
        return InvitationStatus(
            invitation_id=invitation_id,
            state=self.state,
            token_generation=self.generation,
            expires_at=self.expires_at,
            emails_sent=self.emails_sent,
            reminder_sent=self.reminder_sent,
            accepted_by=self.accepted_by,
            accepted_issuer=self.accepted_issuer,
            accepted_subject=self.accepted_subject,
            last_error=self.last_error,
            resends=self.resends,
        )

    def carry(self) -> InvitationCarry:
        """Only runs that check proofs continue as new (older ones end by expiry)."""
        assert self.proof_check is not None
        return InvitationCarry(
            token_generation=self.generation,
            emails_sent=self.emails_sent,
            reminder_sent=self.reminder_sent,
            last_error=self.last_error,
            proof_check=self.proof_check,
            resends=self.resends,
            last_mailed_at=self.last_mailed_at,
        )

    def resume(self, carried: InvitationCarry) -> None:
        self.generation = carried.token_generation
        self.emails_sent = carried.emails_sent
        self.reminder_sent = carried.reminder_sent
        self.last_error = carried.last_error
        self.proof_check = carried.proof_check
        self.resends = carried.resends
        self.last_mailed_at = carried.last_mailed_at
