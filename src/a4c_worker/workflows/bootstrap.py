"""OrganizationBootstrapWorkflow: onboard one organization, or undo what was done.

register → configure, wait for and verify DNS (without a ``domain``: skipped) → issue
invitations → activate (the point of no return) → mail them → start one
InvitationWorkflow per invitation. On a failure or a cancel the registered undos run in
reverse and the workflow fails; it never "completes with an error inside". Design and
the order's history: docs/design/workflows.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from a4c_domain.commands import field_errors
    from a4c_domain.ids import invitation_id, organization_id
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.contracts import (
        DNSRecordInput,
        InvitationOutcome,
        IssueInvitationInput,
        MailOutcome,
        OrganizationRef,
        RegisterOrganizationInput,
    )
    from a4c_worker.search_attributes import organization_search_attributes
    from a4c_worker.workflows.bootstrap_calls import (
        cancel_and_settle,
        deactivate_undo,
        remove_dns_undo,
        revoke_undo,
        send_all,
        send_provisioning_failed_mail,
        send_welcome_mails,
    )
    from a4c_worker.workflows.bootstrap_progress import (
        ACTIVATE,
        CANCEL_REFUSED,
        CANCELLED,
        CONFIGURE_DNS,
        FAILED,
        INVALID_INPUT,
        ISSUE_INVITATIONS,
        PROPAGATION_WAIT,
        RECORD_DNS_VERIFIED,
        REFUSED_BEFORE_ACTING,
        REGISTER,
        SEND_INVITATIONS,
        SEND_WELCOME_MAILS,
        START_INVITATION_WORKFLOWS,
        VERIFY_DNS,
        ProgressBook,
    )
    from a4c_worker.workflows.invitation import InvitationWorkflow
    from a4c_worker.workflows.models import (
        BootstrapInput,
        BootstrapProgress,
        BootstrapResult,
        BootstrapState,
        CancelRequest,
        InvitationInput,
        StepError,
        invitation_workflow_id,
    )
    from a4c_worker.workflows.policies import dns_verify_options, step_options
    from a4c_worker.workflows.saga import Failure, Saga, describe, failure_type

T = TypeVar("T")

# workflow.patched (0.4.0): activate, then mail. docs/workflows.md says when it becomes
# deprecate_patch, and when it goes.
ACTIVATE_BEFORE_MAILS_PATCH = "bootstrap-activate-before-mails"
# workflow.patched (0.5.0): the welcome mails once the invitation workflows are started,
# and the provisioning-failed mail once a failed or cancelled bootstrap is undone.
ORGANIZATION_MAILS_PATCH = "bootstrap-organization-mails"


class CancelRequested(Exception):
    """Raised inside the workflow when the cancel signal or update arrives."""


@workflow.defn(name="OrganizationBootstrapWorkflow", failure_exception_types=[ValidationError])
class OrganizationBootstrapWorkflow:
    def __init__(self) -> None:
        self._book = ProgressBook()
        self._saga = Saga()
        self._spec: BootstrapInput | None = None

    # --- the interface: query, signal, update -----------------------------------------

    @workflow.query
    def progress(self) -> BootstrapProgress:
        return self._book.snapshot()

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Fire-and-forget cancel; ignored once the bootstrap is past the point of no return."""
        if self._book.cancellable() and self._book.cancel_reason is None:
            self._book.cancel_reason = (reason.strip() or "cancelled by signal")[:500]

    @workflow.update
    async def request_cancel(self, reason: str) -> BootstrapProgress:
        """Cancel and wait until compensation is over; returns the final progress."""
        if self._book.cancel_reason is None:
            self._book.cancel_reason = CancelRequest(reason=reason).reason
        await workflow.wait_condition(lambda: self._book.state in ("failed", "cancelled"))
        return self.progress()

    @request_cancel.validator
    def _validate_cancel(self, reason: str) -> None:
        CancelRequest(reason=reason)  # a readable rejection for an empty or huge reason
        if not self._book.cancellable():
            book = self._book
            raise ApplicationError(
                f"the bootstrap is {book.state} at {book.current_step}: too late to cancel",
                type=CANCEL_REFUSED,
            )

    # --- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        spec = self._revalidate(input)
        org_id = organization_id(spec.slug)
        self._book.organization_id = org_id
        self._spec = spec
        try:
            result = await self._bootstrap(spec, org_id)
        except asyncio.CancelledError:
            await self._unwind("cancelled", "cancelled: workflow cancelled")
            raise
        except CancelRequested:
            reason = self._book.cancel_reason or "cancelled"
            await self._unwind("cancelled", f"cancelled: {reason}")
            raise ApplicationError(
                f"bootstrap of {spec.slug!r} cancelled at {self._book.failed_step}: {reason}",
                self.progress(),
                type=CANCELLED,
                non_retryable=True,
            ) from None
        except (ActivityError, ApplicationError) as exc:
            if is_cancelled_exception(exc):
                await self._unwind("cancelled", "cancelled: workflow cancelled")
                raise
            failed_type = failure_type(exc)
            if failed_type in REFUSED_BEFORE_ACTING and self._book.current_step is not None:
                self._saga.discard(self._book.current_step)
            detail = describe(exc)
            # Why it failed, where the caller reads progress (the failure itself is only
            # in the workflow's history).
            self._book.errors.append(
                StepError(
                    step=self._book.current_step or "start",
                    error_type=failed_type or type(exc).__name__,
                    message=detail,
                )
            )
            await self._unwind("failed", f"failed: {detail}")
            raise ApplicationError(
                f"bootstrap of {spec.slug!r} failed at {self._book.failed_step}: {detail}",
                self.progress(),
                type=FAILED,
                non_retryable=True,
            ) from exc
        self._book.state = "completed"
        self._book.current_step = None
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    def _revalidate(self, input: BootstrapInput) -> BootstrapInput:
        """The starter validated already; a client in another language may not have."""
        try:
            return BootstrapInput.model_validate(input.model_dump())
        except ValidationError as exc:
            # The fields and what is wrong with them, never their values (addresses).
            wrong = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))
            message = f"invalid bootstrap input: {wrong}"
            self._book.state = "failed"
            error = StepError(step="start", error_type=INVALID_INPUT, message=message)
            self._book.errors.append(error)
            raise ApplicationError(message, type=INVALID_INPUT, non_retryable=True) from None

    async def _bootstrap(self, spec: BootstrapInput, org_id: UUID) -> BootstrapResult:
        options = step_options(spec.activities)
        ref = OrganizationRef(organization_id=org_id)

        self._saga.add("deactivate", REGISTER, deactivate_undo(org_id, options))
        await self._step(
            REGISTER,
            lambda: workflow.execute_activity_method(
                OnboardingActivities.register_organization,
                RegisterOrganizationInput(
                    name=spec.name,
                    slug=spec.slug,
                    org_type=spec.org_type,
                    parent_id=spec.parent_id,
                    tags=spec.tags,
                    domain=spec.domain,
                ),
                **options,
            ),
        )

        if spec.domain is not None:
            await self._dns_steps(spec, DNSRecordInput(organization_id=org_id, fqdn=spec.domain))

        invitations = await self._issue_invitations(spec, org_id)
        mails = await self._activate_and_mail(spec, ref, invitations)
        children = await self._start_invitation_workflows(spec, invitations)
        if workflow.patched(ORGANIZATION_MAILS_PATCH):
            await self._welcome(spec, org_id, {m.email for m in mails if m.sent}, options)
        return BootstrapResult(
            organization_id=org_id,
            invitation_ids=[i.invitation_id for i in invitations],
            emails_sent=[m.email for m in mails if m.sent],
            emails_failed=[m.email for m in mails if not m.sent],
            invitation_workflow_ids=children,
            completed_steps=list(self._book.completed),
        )

    async def _welcome(
        self, spec: BootstrapInput, org_id: UUID, reached: set[str], options: dict[str, Any]
    ) -> None:
        """Past the point of no return the organization stays, whatever a mail does: even
        a cancellation of the workflow now only ends the welcome mails (it must not undo
        an active organization's onboarding for them)."""
        try:
            await send_welcome_mails(spec, org_id, reached, options, self._book.errors)
        except (asyncio.CancelledError, ActivityError) as exc:
            if isinstance(exc, ActivityError) and not is_cancelled_exception(exc):
                raise
            self._book.errors.append(
                StepError(
                    step=SEND_WELCOME_MAILS,
                    error_type="Cancelled",
                    message="the workflow was cancelled: welcome mails not sent yet stay unsent",
                )
            )

    async def _activate_and_mail(
        self, spec: BootstrapInput, ref: OrganizationRef, invitations: list[InvitationOutcome]
    ) -> list[MailOutcome]:
        if workflow.patched(ACTIVATE_BEFORE_MAILS_PATCH):
            return await self._activate_then_send(spec, ref, invitations)
        return await self._send_then_activate(spec, ref, invitations)

    async def _activate_then_send(
        self, spec: BootstrapInput, ref: OrganizationRef, invitations: list[InvitationOutcome]
    ) -> list[MailOutcome]:
        """Since 0.4.0: mail only once the organization is active, and can no longer be
        rolled back. Mailed before activation (which can fail, or be cancelled), an
        invitee of a rolled-back organization got a link that was dead on arrival.
        """
        await self._activate(spec, ref)
        self._book.activated = True
        return await self._step(SEND_INVITATIONS, lambda: self._send_all(spec, invitations))

    async def _send_then_activate(
        self, spec: BootstrapInput, ref: OrganizationRef, invitations: list[InvitationOutcome]
    ) -> list[MailOutcome]:
        """Before 0.4.0 (executions without the patch's marker replay this order)."""
        mails = await self._step(SEND_INVITATIONS, lambda: self._send_all(spec, invitations))
        await self._activate(spec, ref)
        return mails

    async def _activate(self, spec: BootstrapInput, ref: OrganizationRef) -> None:
        await self._step(
            ACTIVATE,
            lambda: workflow.execute_activity_method(
                OnboardingActivities.activate_organization,
                ref,
                **step_options(spec.activities),
            ),
        )

    async def _dns_steps(self, spec: BootstrapInput, record: DNSRecordInput) -> None:
        options = step_options(spec.activities)
        self._saga.add("remove_dns", CONFIGURE_DNS, remove_dns_undo(record, options))
        await self._step(
            CONFIGURE_DNS,
            lambda: workflow.execute_activity_method(
                OnboardingActivities.configure_dns, record, **options
            ),
        )
        if spec.propagation_wait_seconds > 0:
            await self._step(PROPAGATION_WAIT, lambda: asyncio.sleep(spec.propagation_wait_seconds))
        await self._step(
            VERIFY_DNS,
            lambda: workflow.execute_activity_method(
                OnboardingActivities.verify_dns,
                record,
                **dns_verify_options(
                    spec.activities,
                    spec.dns_verify_attempts,
                    spec.dns_verify_initial_interval_seconds,
                ),
            ),
        )
        await self._step(
            RECORD_DNS_VERIFIED,
            lambda: workflow.execute_activity_method(
                OnboardingActivities.record_dns_verified,
                OrganizationRef(organization_id=record.organization_id),
                **options,
            ),
        )

    async def _issue_invitations(
        self, spec: BootstrapInput, org_id: UUID
    ) -> list[InvitationOutcome]:
        options = step_options(spec.activities)
        expires_at = workflow.now() + timedelta(seconds=spec.invitation_ttl_seconds)
        for invitee in spec.invitees:
            inv_id = invitation_id(org_id, invitee.email, 1)
            self._saga.add(f"revoke_invitation:{invitee.email}", ISSUE_INVITATIONS,
                           revoke_undo(inv_id, options))  # fmt: skip

        async def issue_all() -> list[InvitationOutcome]:
            # All run to the end before any failure is raised: an invite still in flight
            # while compensation revokes would leave a pending invitation behind.
            results = await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        OnboardingActivities.issue_invitation,
                        IssueInvitationInput(
                            organization_id=org_id, invitee=invitee, expires_at=expires_at
                        ),
                        **options,
                    )
                    for invitee in spec.invitees
                ),
                return_exceptions=True,
            )
            issued = [r for r in results if isinstance(r, InvitationOutcome)]
            self._book.invitation_ids = [i.invitation_id for i in issued]
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return issued

        return await self._step(ISSUE_INVITATIONS, issue_all)

    def _send_all(
        self, spec: BootstrapInput, invitations: list[InvitationOutcome]
    ) -> Awaitable[list[MailOutcome]]:
        options = step_options(spec.activities)
        return send_all(spec.name, invitations, options, self._book.errors)

    async def _start_invitation_workflows(
        self, spec: BootstrapInput, invitations: list[InvitationOutcome]
    ) -> list[str]:
        """Hand each invitation to its own long-lived workflow; not cancellable any more."""
        self._book.current_step = START_INVITATION_WORKFLOWS
        labels = organization_search_attributes(organization_id(spec.slug), spec.slug, spec.tags)
        ids: list[str] = []
        for inv in invitations:
            child_id = invitation_workflow_id(inv.invitation_id)
            await workflow.start_child_workflow(
                InvitationWorkflow.run,
                InvitationInput(
                    invitation_id=inv.invitation_id,
                    organization_name=spec.name,
                    ttl_seconds=spec.invitation_ttl_seconds,
                    reminder_before_seconds=spec.reminder_before_seconds,
                    already_sent=True,
                    expires_at=inv.expires_at,
                    activities=spec.activities,
                    resends=spec.resends,
                ),
                id=child_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                # Not compared on replay: histories recorded without them still replay.
                search_attributes=labels,
            )
            ids.append(child_id)
        self._book.completed.append(START_INVITATION_WORKFLOWS)
        return ids

    # --- the machinery: steps, cancellation, compensation ------------------------------

    async def _step(self, name: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run one step, racing it against a cancel request."""
        if self._book.cancel_reason is not None:
            raise CancelRequested()
        self._book.current_step = name
        task: asyncio.Task[T] = asyncio.ensure_future(action())
        try:
            await workflow.wait_condition(
                lambda: task.done() or self._book.cancel_reason is not None
            )
        except asyncio.CancelledError:
            await cancel_and_settle(task)
            raise
        if not task.done():
            await cancel_and_settle(task)
            raise CancelRequested()
        result = task.result()
        self._book.completed.append(name)
        return result

    async def _unwind(self, final: BootstrapState, reason: str) -> None:
        book = self._book
        book.state = "compensating"
        book.failed_step = book.current_step
        failure = Failure(step=book.current_step or "start", reason=reason)
        await self._saga.compensate(failure, book.compensations.append)
        await self._report_undone(failure)
        book.state = final
        book.current_step = None
        # Let request_cancel return the final progress before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _report_undone(self, failure: Failure) -> None:
        """The provisioning-failed mail, for failures and cancels alike: either way an
        organization was registered and undone, which the operators are told. Not when
        this bootstrap registered nothing (the slug may be another one's organization)."""
        spec, book = self._spec, self._book
        deactivated = any(
            c.step == "deactivate" and c.outcome == "done" for c in book.compensations
        )
        if spec is None or book.organization_id is None:
            return
        if REGISTER not in book.completed and not deactivated:
            return
        if not workflow.patched(ORGANIZATION_MAILS_PATCH):
            return
        await send_provisioning_failed_mail(
            spec,
            book.organization_id,
            failure.step,
            failure.reason,
            book.compensations,
            step_options(spec.activities),
            book.errors,
        )
