"""The organization's activities: register, record DNS verified, activate, deactivate,
and offboarding's: look at what to undo, revoke one invitation and end its workflow,
offboard.

Registering refuses a domain outside the worker's zone before anything is stored.
Deactivating (a compensation: never registered is nothing to do) and offboarding revoke
the organization's pending invitations and signal their workflows.
"""

from __future__ import annotations

from uuid import UUID

from temporalio import activity
from temporalio.exceptions import ApplicationError

from a4c_domain.errors import InvitationAlreadyAccepted, InvitationExpired
from a4c_worker.activities.base import (
    SYSTEM,
    ActivityBase,
    compensated,
    organization_outcome,
    signal_ended,
    temporal_errors,
)
from a4c_worker.contracts import (
    CompensationOutcome,
    DeactivateInput,
    OffboardingPlan,
    OffboardInput,
    OrganizationOutcome,
    OrganizationRef,
    RegisterOrganizationInput,
    RevokeInput,
)

# An invitation that ended since offboarding saw it pending: the refusal's type, and how.
ENDED_OTHERWISE = {
    InvitationAlreadyAccepted.__name__: "accepted",
    InvitationExpired.__name__: "expired",
}


class OrganizationActivities(ActivityBase):
    @activity.defn
    async def register_organization(self, input: RegisterOrganizationInput) -> OrganizationOutcome:
        if input.domain is not None:
            with temporal_errors():  # refused before any event is stored
                self.links.require_below_zone(input.domain)
        view = await self._domain(
            self.app.register_organization,
            name=input.name,
            slug=input.slug,
            org_type=input.org_type,
            parent_id=input.parent_id,
            tags=input.tags,
            domain=input.domain,
        )
        return organization_outcome(view)

    @activity.defn
    async def record_dns_verified(self, input: OrganizationRef) -> OrganizationOutcome:
        view = await self._domain(self.app.verify_dns, organization_id=input.organization_id)
        return organization_outcome(view)

    @activity.defn
    async def activate_organization(self, input: OrganizationRef) -> OrganizationOutcome:
        view = await self._domain(self.app.activate, organization_id=input.organization_id)
        return organization_outcome(view)

    @activity.defn
    async def deactivate_organization(self, input: DeactivateInput) -> CompensationOutcome:
        view = await self._absent_is_fine(
            self.app.deactivate,
            organization_id=input.organization_id,
            reason=input.reason,
            failed_step=input.failed_step,
        )
        if view is not None:  # its pending invitations were revoked with it
            await signal_ended(view.invitation_ids)
        return compensated(view, "organization never registered")

    # --- offboarding ------------------------------------------------------------------

    @activity.defn
    async def offboarding_plan(self, input: OrganizationRef) -> OffboardingPlan:
        """Read only: the organization's state, the record to remove, its pending
        invitations (``OrganizationNotFound`` if there is no such organization)."""
        org = await self._domain(self.app.get_organization, input.organization_id)
        pending: list[UUID] = []
        for found in org.invitation_ids:
            inv = await self._domain(self.app.get_invitation, found, SYSTEM)
            if inv.status == "pending":
                pending.append(found)
        fqdn = None if org.dns_status == "removed" else (org.fqdn or org.domain)
        return OffboardingPlan(
            organization_id=org.id,
            slug=org.slug,
            status=org.status,
            fqdn=fqdn,
            pending_invitation_ids=pending,
        )

    @activity.defn
    async def end_invitation(self, input: RevokeInput) -> CompensationOutcome:
        """Revoke one invitation (one command; revoked already is a no-op) and tell its
        workflow at once, with the signal every ending in the store sends. One that
        ended otherwise since it was seen pending (accepted: a member now; expired) is
        nothing to do, not a failure."""
        try:
            view = await self._absent_is_fine(
                self.app.revoke_invitation,
                organization_id=SYSTEM,
                invitation_id=input.invitation_id,
                reason=input.reason,
            )
        except ApplicationError as exc:
            ended = ENDED_OTHERWISE.get(exc.type or "")
            if ended is None:
                raise
            return CompensationOutcome(
                outcome="nothing_to_do", detail=f"invitation already {ended}"
            )
        if view is not None:
            await signal_ended([input.invitation_id])
        return compensated(view, "invitation never issued")

    @activity.defn
    async def offboard_organization(self, input: OffboardInput) -> OrganizationOutcome:
        """Offboard (its pending invitations revoked in the same save) and signal the
        workflows of its invitations; the same offboarding again is a no-op."""
        view = await self._domain(
            self.app.offboard, organization_id=input.organization_id, reason=input.reason
        )
        await signal_ended(view.invitation_ids)
        return organization_outcome(view)
