"""EmailDomainVerificationWorkflow: an organization's e-mail domain, verified once the
challenge it was given shows in the domain's DNS.

First the request (``request_email_domain``: the challenge, the same one when asked
again; a domain another organization owns is ``EmailDomainTaken``). With ``check``
false the run ends there (the API's ``POST …/email-domains``: the admin publishes the
record, then asks for the check); else the check follows.

One activity (``verify_email_domain``), retried with back-off while the challenge is not
published (``EmailDomainChallengeNotPublished``): ``check_attempts`` checks, the waits
doubling. Never found: the run fails with ``EmailDomainNotVerified`` and the request
stays pending (a later run checks again). Another organization owning the domain, or a
request never made, ends the run with the domain's error type (``EmailDomainTaken``,
``EmailDomainNotFound``).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from a4c_worker.activities.email_domains import (
        EMAIL_DOMAIN_NOT_PUBLISHED,
        EmailDomainActivities,
    )
    from a4c_worker.contracts import EmailDomainInput, EmailDomainOutcome
    from a4c_worker.workflows.policies import dns_verify_options, step_options
    from a4c_worker.workflows.saga import application_cause
    from a4c_worker.workflows.sso_models import (
        EMAIL_DOMAIN_NOT_VERIFIED,
        EmailDomainVerificationInput,
    )


@workflow.defn
class EmailDomainVerificationWorkflow:
    @workflow.run
    async def run(self, input: EmailDomainVerificationInput) -> EmailDomainOutcome:
        try:
            requested: EmailDomainOutcome = await workflow.execute_activity_method(
                EmailDomainActivities.request_email_domain,
                EmailDomainInput(organization_id=input.organization_id, domain=input.domain),
                **step_options(input.activities),
            )
        except ActivityError as exc:
            refused = application_cause(exc)
            if refused is None:
                raise
            raise ApplicationError(
                refused.message, *refused.details, type=refused.type, non_retryable=True
            ) from None
        if not input.check or requested.status == "verified":
            return requested
        try:
            outcome: EmailDomainOutcome = await workflow.execute_activity_method(
                EmailDomainActivities.verify_email_domain,
                EmailDomainInput(organization_id=input.organization_id, domain=input.domain),
                **dns_verify_options(
                    input.activities, input.check_attempts, input.first_check_interval_seconds
                ),
            )
        except ActivityError as exc:
            refused = application_cause(exc)
            if refused is None:
                raise
            if refused.type == EMAIL_DOMAIN_NOT_PUBLISHED:
                raise ApplicationError(
                    f"the challenge of {input.domain} was not in its DNS after "
                    f"{input.check_attempts} checks",
                    type=EMAIL_DOMAIN_NOT_VERIFIED,
                    non_retryable=True,
                ) from None
            raise ApplicationError(
                refused.message, *refused.details, type=refused.type, non_retryable=True
            ) from None
        return outcome
