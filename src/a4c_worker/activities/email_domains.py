"""The e-mail domain activity: find an organization's challenge in its domain's DNS, then
record the domain as verified (which claims it for the organization).

The challenge is published by the organization as the TXT record
``_a4c-challenge.<domain>`` (``a4c_domain.email_domains``); it is read through recursive
resolvers (``TXTLookup``). While it is not there the activity raises a retryable
:data:`EMAIL_DOMAIN_NOT_PUBLISHED`, so Temporal's back-off does the waiting, as for an
organization's own DNS record (``DNS_NOT_VISIBLE``). Another organization owning the
domain is ``EmailDomainTaken``, not retried. What the domain's DNS holds besides the
challenge never reaches an error text or history.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from a4c_domain.views import EmailDomainView
from a4c_worker.activities.base import ActivityBase, temporal_errors
from a4c_worker.contracts import EmailDomainInput, EmailDomainOutcome

# The ApplicationError type while the challenge is not published (yet): retryable.
EMAIL_DOMAIN_NOT_PUBLISHED = "EmailDomainChallengeNotPublished"


def domain_outcome(view: EmailDomainView) -> EmailDomainOutcome:
    return EmailDomainOutcome(
        organization_id=view.organization_id,
        domain=view.domain,
        status=view.status,
        written=view.position is not None,
        challenge=view.challenge,
    )


class EmailDomainActivities(ActivityBase):
    @activity.defn
    async def request_email_domain(self, input: EmailDomainInput) -> EmailDomainOutcome:
        """Give the organization its challenge for ``domain`` (asked again: the same one,
        nothing written). Another organization owns it: ``EmailDomainTaken``."""
        view = await self._domain(
            self.app.request_email_domain_verification,
            organization_id=input.organization_id,
            domain=input.domain,
        )
        return domain_outcome(view)

    @activity.defn
    async def verify_email_domain(self, input: EmailDomainInput) -> EmailDomainOutcome:
        """Verify ``domain`` for the organization once its challenge is in its DNS.

        Verified already: nothing is looked up, and nothing written (a retry after the
        write converges)."""
        request = await self._domain(self.app.get_email_domain, input.organization_id, input.domain)
        if request.status != "verified":
            with temporal_errors():
                published = await self.txt.texts(request.record_name)
            if request.record_value not in published:
                raise ApplicationError(
                    f"{request.record_name} does not carry the organization's challenge yet",
                    type=EMAIL_DOMAIN_NOT_PUBLISHED,
                )
        view = await self._domain(
            self.app.verify_email_domain,
            organization_id=input.organization_id,
            domain=input.domain,
        )
        return domain_outcome(view)
