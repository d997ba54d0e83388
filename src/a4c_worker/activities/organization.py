"""The organization's activities: register, record DNS verified, activate, deactivate.

Registering refuses a domain outside the worker's zone before anything is stored.
Deactivating (a compensation: never registered is nothing to do) revokes the
organization's pending invitations and signals their workflows.
"""

from __future__ import annotations

from temporalio import activity

from a4c_worker.activities.base import (
    ActivityBase,
    compensated,
    organization_outcome,
    signal_ended,
    temporal_errors,
)
from a4c_worker.contracts import (
    CompensationOutcome,
    DeactivateInput,
    OrganizationOutcome,
    OrganizationRef,
    RegisterOrganizationInput,
)


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
