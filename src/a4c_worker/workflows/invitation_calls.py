"""The invitation workflow's issue command and its mails: inputs, options, bookkeeping.

A mail that fails is recorded in the book (and, for the invitation mail, in the store),
never fatal: the invitation still stands. InvitationWorkflow decides when each runs.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.contracts import (
        EmailFailureInput,
        InvitationOutcome,
        IssueInvitationInput,
        MailKind,
        SendMailInput,
    )
    from a4c_worker.workflows.invitation_state import InvitationBook
    from a4c_worker.workflows.models import InvitationInput, InvitationToIssue
    from a4c_worker.workflows.policies import step_options, until_answered
    from a4c_worker.workflows.saga import describe


def issue(spec: InvitationInput, request: InvitationToIssue) -> Awaitable[InvitationOutcome]:
    return workflow.execute_activity_method(
        OnboardingActivities.issue_invitation,
        IssueInvitationInput(
            organization_id=request.organization_id,
            invitee=request.invitee,
            generation=request.generation,
            expires_at=workflow.now() + timedelta(seconds=spec.ttl_seconds),
        ),
        # Until the store answers: a refusal ends it, and an invite that committed
        # but timed out is found again (idempotent), so nothing is left half-written.
        **until_answered(spec.activities),
    )


async def send_mail(book: InvitationBook, spec: InvitationInput, kind: MailKind) -> None:
    """Send one mail; a failure is recorded, never fatal (the invitation still stands)."""
    options = step_options(spec.activities)
    if kind == "invitation":  # a refused one too: the cooldown spares the inbox
        book.last_mailed_at = workflow.now()
    try:
        outcome = await workflow.execute_activity_method(
            OnboardingActivities.send_invitation_email,
            SendMailInput(
                invitation_id=spec.invitation_id,
                organization_name=spec.organization_name,
                kind=kind,
            ),
            **options,
        )
    except ActivityError as exc:
        book.last_error = describe(exc)
        if kind == "invitation":
            await workflow.execute_activity_method(
                OnboardingActivities.record_email_failure,
                EmailFailureInput(invitation_id=spec.invitation_id, reason=book.last_error),
                **options,
            )
        return
    if outcome.sent:
        book.emails_sent += 1
    else:
        book.last_error = outcome.error
