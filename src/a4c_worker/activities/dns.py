"""The DNS activities: configure (claim, publish, record), verify, remove.

A domain lies strictly below the worker's zone and is claimed for the organization
before anything is published under it; removal deletes only the exact record this
organization would have published, under a domain it holds. See
docs/design/activities.md.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from a4c_domain.commands import hostname
from a4c_worker.activities.base import ActivityBase, temporal_errors
from a4c_worker.contracts import CompensationOutcome, DNSRecordInput, DNSRecordOutcome

# The ApplicationError type the verify activity raises while the record is not served
# yet: retryable, so Temporal's back-off does the waiting.
DNS_NOT_VISIBLE = "DNSNotVisible"
# Why an organization registered before 0.3.0 keeps its record, and what fixes it.
UNCLAIMED = (
    "the organization holds no claim on it (it took the domain before 0.3.0); "
    "run `a4c-worker claim-domains`, then delete the record"
)


class DNSActivities(ActivityBase):
    @activity.defn
    async def configure_dns(self, input: DNSRecordInput) -> DNSRecordOutcome:
        """Claim ``fqdn``, publish ``fqdn`` → the DNS target, record it on the organization.

        Each part is idempotent, so a retry after any of them converges. The claim comes
        first: nothing is published under a domain another organization holds.
        """
        with temporal_errors():
            self.links.require_below_zone(input.fqdn)
        await self._domain(
            self.app.claim_domain, organization_id=input.organization_id, fqdn=input.fqdn
        )
        with temporal_errors():
            record_id = await self.dns.ensure_record(input.fqdn, self.links.dns_target)
        await self._domain(
            self.app.configure_dns,
            organization_id=input.organization_id,
            fqdn=input.fqdn,
            target=self.links.dns_target,
            record_id=record_id,
        )
        return DNSRecordOutcome(
            organization_id=input.organization_id,
            fqdn=input.fqdn,
            target=self.links.dns_target,
            record_id=record_id,
        )

    @activity.defn
    async def verify_dns(self, input: DNSRecordInput) -> bool:
        """Ask the authoritative servers; "not yet" raises a retryable error for back-off."""
        with temporal_errors():
            visible = await self.verifier.verify(input.fqdn, self.links.dns_target)
        if not visible:
            raise ApplicationError(
                f"{input.fqdn} does not resolve to {self.links.dns_target} yet",
                type=DNS_NOT_VISIBLE,
            )
        return True

    @activity.defn
    async def remove_dns(self, input: DNSRecordInput) -> CompensationOutcome:
        """Delete this organization's record (even if never recorded), then record that.

        Only under a domain the organization holds, and only the exact record it
        publishes (its recorded record id when there is one): a record of a domain held
        by another organization, or with other data, is never touched.

        An organization that took its domain before 0.3.0 may hold no claim on it yet:
        nothing is deleted then either (another old organization may share the name),
        the removal is not recorded (its state keeps saying what is published), and the
        outcome and a warning name the backfill that claims it.
        """
        right = await self._domain(self.app.dns_removal, input.organization_id, input.fqdn)
        if right == "unclaimed":
            activity.logger.warning("%s not removed: %s", input.fqdn, UNCLAIMED)
            return CompensationOutcome(
                outcome="nothing_to_do", detail=f"{input.fqdn} not removed: {UNCLAIMED}"
            )
        if right == "not_own":
            activity.logger.warning("not removing %s: not this organization's domain", input.fqdn)
        removed = right == "own" and await self._remove_own_record(input)
        view = await self._absent_is_fine(
            self.app.remove_dns, organization_id=input.organization_id
        )
        # The domain records a removal even when nothing was configured (so a late
        # configure lands as a no-op); only a removal of a recorded record is "done".
        recorded = view is not None and view.position is not None and view.fqdn is not None
        if removed or recorded:
            return CompensationOutcome(outcome="done", detail=f"{input.fqdn} removed")
        return CompensationOutcome(outcome="nothing_to_do", detail=f"{input.fqdn} not published")

    async def _remove_own_record(self, input: DNSRecordInput) -> bool:
        org = await self._domain(self.app.get_organization, input.organization_id)
        recorded = org.fqdn == hostname(input.fqdn)
        with temporal_errors():
            return await self.dns.remove_record(
                input.fqdn,
                (org.dns_target if recorded else None) or self.links.dns_target,
                record_id=org.dns_record_id if recorded else None,
            )
