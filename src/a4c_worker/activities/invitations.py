"""The invitation's activities: issue, re-issue, accept, look up, expire, revoke.

Tokens are recomputed here when needed and never leave the activity. Issuing a newer
generation supersedes older pending ones: their workflows are signalled on every
attempt. Revoking is a compensation: never issued is nothing to do.
"""

from __future__ import annotations

import hmac

from temporalio import activity

from a4c_domain.errors import InvalidToken
from a4c_domain.ids import invitation_id
from a4c_worker.activities.base import (
    SYSTEM,
    ActivityBase,
    compensated,
    invitation_outcome,
    signal_ended,
    to_application_error,
)
from a4c_worker.contracts import (
    AcceptInput,
    CompensationOutcome,
    InvitationOutcome,
    InvitationRef,
    IssueInvitationInput,
    ProofCheckOutcome,
    ReissueInput,
    RevokeInput,
    accept_proof,
    proof_check,
)


class InvitationActivities(ActivityBase):
    @activity.defn
    async def issue_invitation(self, input: IssueInvitationInput) -> InvitationOutcome:
        view = await self._domain(
            self.app.invite,
            organization_id=input.organization_id,
            email=input.invitee.email,
            role=input.invitee.role,
            first_name=input.invitee.first_name,
            last_name=input.invitee.last_name,
            generation=input.generation,
            expires_at=input.expires_at,
        )
        # Older generations the store may just have superseded (revoked).
        await signal_ended(
            invitation_id(input.organization_id, view.email, generation)
            for generation in range(1, input.generation)
        )
        return invitation_outcome(view)

    @activity.defn
    async def reissue_token(self, input: ReissueInput) -> InvitationOutcome:
        view = await self._domain(
            self.app.reissue_token,
            organization_id=SYSTEM,
            invitation_id=input.invitation_id,
            token_generation=input.token_generation,
            expires_at=input.expires_at,
        )
        return invitation_outcome(view)

    @activity.defn
    async def accept_invitation(self, input: AcceptInput) -> InvitationOutcome:
        """Check the proof against the current token, then accept with the real token."""
        inv = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        token = self.app.tokens.token(inv.id, inv.token_generation)
        if not hmac.compare_digest(accept_proof(token), input.token_proof):
            raise to_application_error(
                InvalidToken(f"the token does not match invitation {inv.id}")
            )
        view = await self._domain(
            self.app.accept_invitation,
            organization_id=SYSTEM,
            invitation_id=inv.id,
            token=token,
            user_id=input.user_id,
            identity=input.identity,
        )
        return invitation_outcome(view)

    @activity.defn
    async def accept_proof_check(self, input: InvitationRef) -> ProofCheckOutcome:
        """What the workflow's accept validator compares proofs against (never the proof)."""
        inv = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        token = self.app.tokens.token(inv.id, inv.token_generation)
        return ProofCheckOutcome(
            token_generation=inv.token_generation, proof_check=proof_check(accept_proof(token))
        )

    @activity.defn
    async def look_up_invitation(self, input: InvitationRef) -> InvitationOutcome:
        """The stored invitation (its status): what a signalled workflow ends with."""
        view = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        return invitation_outcome(view)

    @activity.defn
    async def expire_invitation(self, input: InvitationRef) -> InvitationOutcome:
        view = await self._domain(
            self.app.expire_invitation, organization_id=SYSTEM, invitation_id=input.invitation_id
        )
        return invitation_outcome(view)

    @activity.defn
    async def revoke_invitation(self, input: RevokeInput) -> CompensationOutcome:
        view = await self._absent_is_fine(
            self.app.revoke_invitation,
            organization_id=SYSTEM,
            invitation_id=input.invitation_id,
            reason=input.reason,
        )
        return compensated(view, "invitation never issued")
