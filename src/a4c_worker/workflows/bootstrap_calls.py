"""The bootstrap's activity calls that are not steps of their own.

The undos registered before a step acts (deactivate, remove DNS, revoke), the
invitation mails, sent in parallel, and the mails about the organization (welcome,
provisioning failed): an address not mailed is a recorded error, never fatal.
OrganizationBootstrapWorkflow decides when each one runs (the offboarding's mail goes
through :func:`mail_organization` too).
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.activities.organization_mail import (
        OrganizationMailInput,
        OrganizationMailOutcome,
        UndoDone,
    )
    from a4c_worker.contracts import (
        CompensationOutcome,
        DeactivateInput,
        DNSRecordInput,
        EmailFailureInput,
        InvitationOutcome,
        MailOutcome,
        RevokeInput,
        SendMailInput,
    )
    from a4c_worker.workflows.bootstrap_progress import (
        SEND_INVITATIONS,
        SEND_PROVISIONING_FAILED_MAIL,
        SEND_WELCOME_MAILS,
    )
    from a4c_worker.workflows.models import BootstrapInput, CompensationRecord, StepError
    from a4c_worker.workflows.saga import Failure, Undo, describe


def deactivate_undo(org_id: UUID, options: dict[str, Any]) -> Undo:
    async def undo(failure: Failure) -> CompensationOutcome:
        return await workflow.execute_activity_method(
            OnboardingActivities.deactivate_organization,
            DeactivateInput(
                organization_id=org_id,
                reason=f"bootstrap {failure.reason}"[:500],
                failed_step=failure.step,
            ),
            **options,
        )

    return undo


def remove_dns_undo(record: DNSRecordInput, options: dict[str, Any]) -> Undo:
    async def undo(_: Failure) -> CompensationOutcome:
        return await workflow.execute_activity_method(
            OnboardingActivities.remove_dns, record, **options
        )

    return undo


def revoke_undo(inv_id: UUID, options: dict[str, Any]) -> Undo:
    async def undo(failure: Failure) -> CompensationOutcome:
        return await workflow.execute_activity_method(
            OnboardingActivities.revoke_invitation,
            RevokeInput(
                invitation_id=inv_id,
                reason=f"organization bootstrap undone at {failure.step}",
            ),
            **options,
        )

    return undo


async def send_all(
    organization_name: str,
    invitations: list[InvitationOutcome],
    options: dict[str, Any],
    errors: list[StepError],
) -> list[MailOutcome]:
    """Mail every invitation at once; each one not sent is appended to ``errors``."""

    async def send(inv: InvitationOutcome) -> MailOutcome:
        outcome: MailOutcome
        try:
            outcome = await workflow.execute_activity_method(
                OnboardingActivities.send_invitation_email,
                SendMailInput(invitation_id=inv.invitation_id, organization_name=organization_name),
                **options,
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise
            # Retries exhausted on a transient failure: record it, go on.
            outcome = MailOutcome(
                invitation_id=inv.invitation_id,
                email=inv.email,
                sent=False,
                error=describe(exc),
            )
            try:
                await workflow.execute_activity_method(
                    OnboardingActivities.record_email_failure,
                    EmailFailureInput(invitation_id=inv.invitation_id, reason=outcome.error),
                    **options,
                )
            except ActivityError as record_exc:
                errors.append(
                    StepError(
                        step=SEND_INVITATIONS,
                        error_type="RecordEmailFailed",
                        message=describe(record_exc),
                        email=inv.email,
                    )
                )
        if not outcome.sent:
            errors.append(
                StepError(
                    step=SEND_INVITATIONS,
                    error_type="EmailNotSent",
                    message=outcome.error or "not sent",
                    email=inv.email,
                )
            )
        return outcome

    return list(await asyncio.gather(*(send(inv) for inv in invitations)))


# Who gets the welcome mail: the invitees who will run the organization.
WELCOMED_ROLES = frozenset({"owner", "admin"})


async def send_welcome_mails(
    spec: BootstrapInput,
    org_id: UUID,
    reached: set[str],
    options: dict[str, Any],
    errors: list[StepError],
) -> None:
    """Welcome each admin or owner invitee whose invitation mail went out (``reached``),
    at once; a mail not sent is a recorded error. An address that refused its invitation
    is not mailed again: it would refuse the welcome too, and the refusal is on record."""
    now = workflow.now()
    welcomed = [i for i in spec.invitees if i.role in WELCOMED_ROLES and i.email in reached]
    mails = [
        OrganizationMailInput(
            organization_id=org_id,
            kind="welcome",
            to=invitee.email,
            first_name=invitee.first_name,
            last_name=invitee.last_name,
            role=invitee.role,
            occurred_at=now,
        )
        for invitee in welcomed
    ]
    await asyncio.gather(
        *(mail_organization(m, SEND_WELCOME_MAILS, options, errors) for m in mails)
    )


async def send_provisioning_failed_mail(
    spec: BootstrapInput,
    org_id: UUID,
    failed_step: str,
    reason: str,
    compensations: list[CompensationRecord],
    options: dict[str, Any],
    errors: list[StepError],
) -> None:
    """Tell the operators (``spec.failure_mail_to``, else the worker's configured
    address) where the bootstrap stopped, why, and what each undo did."""
    mail = OrganizationMailInput(
        organization_id=org_id,
        kind="provisioning_failed",
        to=spec.failure_mail_to,
        failed_step=failed_step[:100],
        reason=reason[:500],
        undone=[UndoDone(step=c.step[:400], outcome=c.outcome) for c in compensations],
        occurred_at=workflow.now(),
    )
    await mail_organization(mail, SEND_PROVISIONING_FAILED_MAIL, options, errors)


async def mail_organization(
    mail: OrganizationMailInput, step: str, options: dict[str, Any], errors: list[StepError]
) -> None:
    """One mail about an organization; not sent (refused, or its retries exhausted) is an
    ``EmailNotSent`` error of ``step`` in ``errors``, never raised (a cancel is)."""
    try:
        outcome: OrganizationMailOutcome = await workflow.execute_activity_method(
            OnboardingActivities.send_organization_mail, mail, **options
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc):
            raise
        errors.append(StepError(step=step, error_type="EmailNotSent", message=describe(exc)))
        return
    if outcome.result == "refused":
        message = outcome.error or "refused"
        errors.append(StepError(step=step, error_type="EmailNotSent", message=message))


async def cancel_and_settle(task: asyncio.Task[Any]) -> None:
    """Cancel a step's task and wait for Temporal to confirm, ignoring how it ended."""
    task.cancel()
    try:
        await task
    except (Exception, asyncio.CancelledError):
        workflow.logger.debug("step task ended after cancellation")
