"""OrganizationBootstrapWorkflow: onboard one organization, or undo what was done.

Steps: register → configure DNS → wait for propagation (durable timer) → verify DNS
(retried with back-off) → record verified → issue invitations → activate → send the
mails in parallel (a refused address is a recorded, non-fatal error) → start one
InvitationWorkflow per invitation (abandoned on close: they outlive the bootstrap),
labelled like the bootstrap with the organization's search attributes. Without a
``domain`` the three DNS steps are skipped.

Activation is the point of no return (too late to cancel after it), and the mails go
out after it, so no invitee is mailed a link that a rollback then revokes. Executions
started before 0.4.0 mailed first, then activated; they replay that way.

Every step registers its undo before it runs. On a fatal failure, a Temporal
cancellation, the ``cancel`` signal or the ``request_cancel`` update, the undos run in
reverse (revoke invitations → remove DNS → deactivate with the failed step), each
best-effort and recorded in ``progress``; then the workflow fails with an
``ApplicationError`` (or ends cancelled, for a Temporal cancellation). It never
"completes with an error inside".

Longer than most modules: one workflow class, whose steps and undos are read together.
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
        CompensationOutcome,
        DeactivateInput,
        DNSRecordInput,
        EmailFailureInput,
        InvitationOutcome,
        IssueInvitationInput,
        MailOutcome,
        OrganizationRef,
        RegisterOrganizationInput,
        RevokeInput,
        SendMailInput,
    )
    from a4c_worker.search_attributes import organization_search_attributes
    from a4c_worker.workflows.invitation import InvitationWorkflow
    from a4c_worker.workflows.models import (
        BootstrapInput,
        BootstrapProgress,
        BootstrapResult,
        BootstrapState,
        CancelRequest,
        CompensationRecord,
        InvitationInput,
        StepError,
        invitation_workflow_id,
    )
    from a4c_worker.workflows.policies import dns_verify_options, step_options
    from a4c_worker.workflows.saga import Failure, Saga, describe, failure_type

T = TypeVar("T")

# Step names: recorded in progress, and as the deactivation's ``failed_step``.
REGISTER = "register"
CONFIGURE_DNS = "configure_dns"
PROPAGATION_WAIT = "propagation_wait"
VERIFY_DNS = "verify_dns"
RECORD_DNS_VERIFIED = "record_dns_verified"
ISSUE_INVITATIONS = "issue_invitations"
SEND_INVITATIONS = "send_invitations"
ACTIVATE = "activate"
START_INVITATION_WORKFLOWS = "start_invitation_workflows"

# Refusals that prove the step did nothing: its undo must not run. (Compensating a
# register that hit another organization's slug would deactivate that organization.)
# The domain refusals come before any event or DNS change (register, configure_dns).
REFUSED_BEFORE_ACTING = frozenset(
    {"InvalidCommand", "OrganizationConflict", "DomainTaken", "DomainOutsideZone"}
)

# workflow.patched (0.4.0): activate, then mail. README "Changing a workflow safely"
# says when it becomes deprecate_patch, and when it goes.
ACTIVATE_BEFORE_MAILS_PATCH = "bootstrap-activate-before-mails"
# The refusal type of a cancel that came too late (what a caller matches on).
CANCEL_REFUSED = "CancelRefused"

INVALID_INPUT = "InvalidBootstrapInput"
CANCELLED = "BootstrapCancelled"
FAILED = "BootstrapFailed"


def registered_nothing(progress: BootstrapProgress) -> bool:
    """Whether a bootstrap ended (failed or cancelled) before its organization was
    registered, and no undo found anything to undo: nothing is stored for its slug, so it
    may be onboarded again, with other input too."""
    return (
        progress.state in ("failed", "cancelled")
        and REGISTER not in progress.completed_steps
        and all(c.outcome == "nothing_to_do" for c in progress.compensations)
    )


class CancelRequested(Exception):
    """Raised inside the workflow when the cancel signal or update arrives."""


@workflow.defn(name="OrganizationBootstrapWorkflow", failure_exception_types=[ValidationError])
class OrganizationBootstrapWorkflow:
    def __init__(self) -> None:
        self._state: BootstrapState = "running"
        self._current_step: str | None = None
        self._completed: list[str] = []
        self._errors: list[StepError] = []
        self._compensations: list[CompensationRecord] = []
        self._organization_id: UUID | None = None
        self._invitation_ids: list[UUID] = []
        self._failed_step: str | None = None
        self._cancel_reason: str | None = None
        self._saga = Saga()
        # Activated by a bootstrap that mails afterwards: past the point of no return.
        self._activated = False

    # --- the interface: query, signal, update -----------------------------------------

    @workflow.query
    def progress(self) -> BootstrapProgress:
        return BootstrapProgress(
            state=self._state,
            current_step=self._current_step,
            completed_steps=list(self._completed),
            errors=list(self._errors),
            compensations=list(self._compensations),
            organization_id=self._organization_id,
            invitation_ids=list(self._invitation_ids),
            failed_step=self._failed_step,
            cancel_reason=self._cancel_reason,
        )

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Fire-and-forget cancel; ignored once the bootstrap is past the point of no return."""
        if self._cancellable() and self._cancel_reason is None:
            self._cancel_reason = (reason.strip() or "cancelled by signal")[:500]

    @workflow.update
    async def request_cancel(self, reason: str) -> BootstrapProgress:
        """Cancel and wait until compensation is over; returns the final progress."""
        if self._cancel_reason is None:
            self._cancel_reason = CancelRequest(reason=reason).reason
        await workflow.wait_condition(lambda: self._state in ("failed", "cancelled"))
        return self.progress()

    @request_cancel.validator
    def _validate_cancel(self, reason: str) -> None:
        CancelRequest(reason=reason)  # a readable rejection for an empty or huge reason
        if not self._cancellable():
            raise ApplicationError(
                f"the bootstrap is {self._state} at {self._current_step}: too late to cancel",
                type=CANCEL_REFUSED,
            )

    def _cancellable(self) -> bool:
        return (
            self._state == "running"
            and not self._activated
            and self._current_step != START_INVITATION_WORKFLOWS
        )

    # --- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: BootstrapInput) -> BootstrapResult:
        spec = self._revalidate(input)
        org_id = organization_id(spec.slug)
        self._organization_id = org_id
        try:
            result = await self._bootstrap(spec, org_id)
        except asyncio.CancelledError:
            await self._unwind("cancelled", "cancelled: workflow cancelled")
            raise
        except CancelRequested:
            reason = self._cancel_reason or "cancelled"
            await self._unwind("cancelled", f"cancelled: {reason}")
            raise ApplicationError(
                f"bootstrap of {spec.slug!r} cancelled at {self._failed_step}: {reason}",
                self.progress(),
                type=CANCELLED,
                non_retryable=True,
            ) from None
        except (ActivityError, ApplicationError) as exc:
            if is_cancelled_exception(exc):
                await self._unwind("cancelled", "cancelled: workflow cancelled")
                raise
            failed_type = failure_type(exc)
            if failed_type in REFUSED_BEFORE_ACTING and self._current_step is not None:
                self._saga.discard(self._current_step)
            detail = describe(exc)
            # Why it failed, where the caller reads progress (the failure itself is only
            # in the workflow's history).
            self._errors.append(
                StepError(
                    step=self._current_step or "start",
                    error_type=failed_type or type(exc).__name__,
                    message=detail,
                )
            )
            await self._unwind("failed", f"failed: {detail}")
            raise ApplicationError(
                f"bootstrap of {spec.slug!r} failed at {self._failed_step}: {detail}",
                self.progress(),
                type=FAILED,
                non_retryable=True,
            ) from exc
        self._state = "completed"
        self._current_step = None
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
            self._state = "failed"
            self._errors.append(StepError(step="start", error_type=INVALID_INPUT, message=message))
            raise ApplicationError(message, type=INVALID_INPUT, non_retryable=True) from None

    async def _bootstrap(self, spec: BootstrapInput, org_id: UUID) -> BootstrapResult:
        options = step_options(spec.activities)
        ref = OrganizationRef(organization_id=org_id)

        self._saga.add("deactivate", REGISTER, self._deactivate_undo(org_id, options))
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
        return BootstrapResult(
            organization_id=org_id,
            invitation_ids=[i.invitation_id for i in invitations],
            emails_sent=[m.email for m in mails if m.sent],
            emails_failed=[m.email for m in mails if not m.sent],
            invitation_workflow_ids=children,
            completed_steps=list(self._completed),
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
        self._activated = True
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

        async def remove(_: Failure) -> CompensationOutcome:
            return await workflow.execute_activity_method(
                OnboardingActivities.remove_dns, record, **options
            )

        self._saga.add("remove_dns", CONFIGURE_DNS, remove)
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
                           self._revoke_undo(inv_id, options))  # fmt: skip

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
            self._invitation_ids = [i.invitation_id for i in issued]
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return issued

        return await self._step(ISSUE_INVITATIONS, issue_all)

    async def _send_all(
        self, spec: BootstrapInput, invitations: list[InvitationOutcome]
    ) -> list[MailOutcome]:
        options = step_options(spec.activities)

        async def send(inv: InvitationOutcome) -> MailOutcome:
            outcome: MailOutcome
            try:
                outcome = await workflow.execute_activity_method(
                    OnboardingActivities.send_invitation_email,
                    SendMailInput(invitation_id=inv.invitation_id, organization_name=spec.name),
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
                    self._errors.append(
                        StepError(
                            step=SEND_INVITATIONS,
                            error_type="RecordEmailFailed",
                            message=describe(record_exc),
                            email=inv.email,
                        )
                    )
            if not outcome.sent:
                self._errors.append(
                    StepError(
                        step=SEND_INVITATIONS,
                        error_type="EmailNotSent",
                        message=outcome.error or "not sent",
                        email=inv.email,
                    )
                )
            return outcome

        return list(await asyncio.gather(*(send(inv) for inv in invitations)))

    async def _start_invitation_workflows(
        self, spec: BootstrapInput, invitations: list[InvitationOutcome]
    ) -> list[str]:
        """Hand each invitation to its own long-lived workflow; not cancellable any more."""
        self._current_step = START_INVITATION_WORKFLOWS
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
        self._completed.append(START_INVITATION_WORKFLOWS)
        return ids

    # --- the machinery: steps, cancellation, compensation ------------------------------

    async def _step(self, name: str, action: Callable[[], Awaitable[T]]) -> T:
        """Run one step, racing it against a cancel request."""
        if self._cancel_reason is not None:
            raise CancelRequested()
        self._current_step = name
        task: asyncio.Task[T] = asyncio.ensure_future(action())
        try:
            await workflow.wait_condition(lambda: task.done() or self._cancel_reason is not None)
        except asyncio.CancelledError:
            await _cancel_and_settle(task)
            raise
        if not task.done():
            await _cancel_and_settle(task)
            raise CancelRequested()
        result = task.result()
        self._completed.append(name)
        return result

    async def _unwind(self, final: BootstrapState, reason: str) -> None:
        self._state = "compensating"
        self._failed_step = self._current_step
        failure = Failure(step=self._current_step or "start", reason=reason)
        await self._saga.compensate(failure, self._compensations.append)
        self._state = final
        self._current_step = None
        # Let request_cancel return the final progress before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)

    def _deactivate_undo(
        self, org_id: UUID, options: dict[str, Any]
    ) -> Callable[[Failure], Awaitable[CompensationOutcome]]:
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

    def _revoke_undo(
        self, inv_id: UUID, options: dict[str, Any]
    ) -> Callable[[Failure], Awaitable[CompensationOutcome]]:
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


async def _cancel_and_settle(task: asyncio.Task[Any]) -> None:
    """Cancel a step's task and wait for Temporal to confirm, ignoring how it ended."""
    task.cancel()
    try:
        await task
    except (Exception, asyncio.CancelledError):
        workflow.logger.debug("step task ended after cancellation")
