"""OrganizationOffboardingWorkflow: end an organization on request, in order.

look (the organization exists and has not ended) → grace period (cancellable: nothing
has changed yet) → look again → revoke each pending invitation and end its workflow at
once → remove the DNS record it owns (never another's: ``remove_dns`` keeps the domain
claim rule) → offboard (``Organization.Offboarded``; invitations issued meanwhile are
revoked in the same save) → mail the admins (``send_organization_mail``, kind
``offboarded``, one activity per address of the input, at once).

Child organizations are not this workflow's to find: the starter (``/v1``) refuses
while an organization has children that are not offboarded, and the caller offboards
the children first. Design, and why the steps roll forward: docs/design/workflows.md.

Past the grace period nothing is undone (a revoked invitation cannot be un-revoked):
each step is idempotent, a failed revocation or DNS removal is recorded and the later
steps still run, so the organization ends even when its DNS provider is down. The run
then fails naming what failed, and starting the offboarding again (a new run may follow
a failed one) runs every step again and finishes the job. A mail not sent is recorded
in the progress (an ``EmailNotSent`` error of ``mail_admins``, the step not completed)
and never fails the offboarding: the organization has ended either way. A new run mails
nobody twice (each mail's record is found by its deterministic Message-ID).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from a4c_domain.ids import organization_id
    from a4c_domain.invitation import ORGANIZATION_OFFBOARDED
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.activities.base import ALREADY_COMPENSATED
    from a4c_worker.activities.organization_mail import OrganizationMailInput
    from a4c_worker.contracts import (
        CompensationOutcome,
        DNSRecordInput,
        OffboardingPlan,
        OffboardInput,
        OrganizationRef,
        RevokeInput,
    )
    from a4c_worker.workflows.bootstrap_calls import mail_organization
    from a4c_worker.workflows.bootstrap_progress import CANCEL_REFUSED
    from a4c_worker.workflows.models import (
        CancelRequest,
        OffboardingInput,
        OffboardingProgress,
        OffboardingResult,
        OffboardingState,
        StepError,
    )
    from a4c_worker.workflows.policies import step_options
    from a4c_worker.workflows.saga import describe, failure_type

# Step names (progress, errors): persisted in histories, never renamed.
LOOK = "look_up_organization"
GRACE_PERIOD = "grace_period"
REVOKE_INVITATIONS = "revoke_invitations"
REMOVE_DNS = "remove_dns"
OFFBOARD = "offboard"
MAIL_ADMINS = "mail_admins"

# The failure types the workflow ends with.
OFFBOARDING_CANCELLED = "OffboardingCancelled"
OFFBOARDING_FAILED = "OffboardingFailed"
OFFBOARDING_REFUSED = "OffboardingRefused"


@dataclass
class _Book:
    """The run's progress as it changes (the query answers a frozen copy)."""

    state: OffboardingState = "waiting"
    current_step: str | None = None
    completed_steps: list[str] = field(default_factory=list)
    errors: list[StepError] = field(default_factory=list)
    organization_id: UUID | None = None
    grace_ends_at: datetime | None = None
    revoked_invitation_ids: list[UUID] = field(default_factory=list)
    cancel_reason: str | None = None

    def snapshot(self) -> OffboardingProgress:
        return OffboardingProgress(
            state=self.state,
            current_step=self.current_step,
            completed_steps=list(self.completed_steps),
            errors=list(self.errors),
            organization_id=self.organization_id,
            grace_ends_at=self.grace_ends_at,
            revoked_invitation_ids=list(self.revoked_invitation_ids),
            cancel_reason=self.cancel_reason,
        )


@workflow.defn(name="OrganizationOffboardingWorkflow", failure_exception_types=[ValidationError])
class OrganizationOffboardingWorkflow:
    def __init__(self) -> None:
        self._progress = _Book()

    # --- the interface: query, signal, update -----------------------------------------

    @workflow.query
    def progress(self) -> OffboardingProgress:
        return self._progress.snapshot()

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Fire-and-forget cancel; ignored once the grace period is over."""
        if self._progress.state == "waiting" and self._progress.cancel_reason is None:
            self._progress.cancel_reason = (reason.strip() or "cancelled by signal")[:500]

    @workflow.update
    async def request_cancel(self, reason: str) -> OffboardingProgress:
        """Cancel inside the grace period; returns the final progress (nothing changed)."""
        if self._progress.cancel_reason is None:
            self._progress.cancel_reason = CancelRequest(reason=reason).reason
        await workflow.wait_condition(lambda: self._progress.state == "cancelled")
        return self.progress()

    @request_cancel.validator
    def _validate_cancel(self, reason: str) -> None:
        CancelRequest(reason=reason)
        if self._progress.state != "waiting":
            raise ApplicationError(
                f"the offboarding is {self._progress.state}: too late to cancel",
                type=CANCEL_REFUSED,
            )

    # --- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OffboardingInput) -> OffboardingResult:
        spec = OffboardingInput.model_validate(input.model_dump())
        org_id = organization_id(spec.slug)
        self._progress.organization_id = org_id
        options = step_options(spec.activities)
        ref = OrganizationRef(organization_id=org_id)

        await self._look(ref, options)  # refuses an unknown or ended one before waiting
        if await self._grace_period(spec.grace_period_seconds):
            self._progress.state = "cancelled"
            self._progress.current_step = None
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise ApplicationError(
                f"offboarding of {spec.slug!r} cancelled: {self._progress.cancel_reason}",
                self.progress(),
                type=OFFBOARDING_CANCELLED,
                non_retryable=True,
            )
        self._progress.state = "running"
        plan = await self._look(ref, options)  # invitations issued during the grace period

        await self._step(REVOKE_INVITATIONS, self._revoke_all(plan, options))
        dns_removed = None
        if plan.fqdn is not None:
            record = DNSRecordInput(organization_id=org_id, fqdn=plan.fqdn)
            if await self._step(
                REMOVE_DNS,
                workflow.execute_activity_method(
                    OnboardingActivities.remove_dns, record, **options
                ),
            ):
                dns_removed = plan.fqdn
        reason = spec.reason
        if not await self._step(
            OFFBOARD,
            workflow.execute_activity_method(
                OnboardingActivities.offboard_organization,
                OffboardInput(organization_id=org_id, reason=reason),
                **options,
            ),
        ):
            return self._failed(spec)  # raises
        await self._mail_admins(spec, org_id, options)
        if any(e.step != MAIL_ADMINS for e in self._progress.errors):
            return self._failed(spec)  # raises: offboarded, but something was left
        self._progress.state = "completed"
        self._progress.current_step = None
        return OffboardingResult(
            organization_id=org_id,
            revoked_invitation_ids=list(self._progress.revoked_invitation_ids),
            dns_removed=dns_removed,
            completed_steps=list(self._progress.completed_steps),
        )

    async def _mail_admins(
        self, spec: OffboardingInput, org_id: UUID, options: dict[str, Any]
    ) -> None:
        """The offboarded mail to each of ``spec.admins``, at once; one not sent is a
        recorded error, never a failed offboarding."""
        self._progress.current_step = MAIL_ADMINS
        now = workflow.now()
        mails = [
            OrganizationMailInput(
                organization_id=org_id,
                kind="offboarded",
                to=admin,
                reason=spec.reason,
                occurred_at=now,
            )
            for admin in spec.admins
        ]
        errors = len(self._progress.errors)
        await asyncio.gather(
            *(mail_organization(m, MAIL_ADMINS, options, self._progress.errors) for m in mails)
        )
        if len(self._progress.errors) == errors:
            self._progress.completed_steps.append(MAIL_ADMINS)

    # --- the steps --------------------------------------------------------------------

    async def _look(self, ref: OrganizationRef, options: dict[str, Any]) -> OffboardingPlan:
        self._progress.current_step = LOOK
        try:
            plan: OffboardingPlan = await workflow.execute_activity_method(
                OnboardingActivities.offboarding_plan, ref, **options
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise
            self._refuse(failure_type(exc) or "ActivityError", describe(exc))
        if plan.status == "deactivated":
            self._refuse(
                "OrganizationInactive",
                f"organization {plan.slug!r} was deactivated (its bootstrap was undone): "
                "nothing to offboard",
            )
        return plan

    def _refuse(self, error_type: str, message: str) -> NoReturn:
        """Before the grace period ends: nothing has changed. Raises."""
        self._progress.state = "failed"
        self._progress.errors.append(StepError(step=LOOK, error_type=error_type, message=message))
        raise ApplicationError(message, error_type, type=OFFBOARDING_REFUSED, non_retryable=True)

    async def _grace_period(self, seconds: float) -> bool:
        """Wait ``seconds`` for a cancel; whether one came (nothing has changed)."""
        self._progress.current_step = GRACE_PERIOD
        if seconds > 0:
            self._progress.grace_ends_at = workflow.now() + timedelta(seconds=seconds)
            with contextlib.suppress(TimeoutError):  # the grace period is over
                await workflow.wait_condition(
                    lambda: self._progress.cancel_reason is not None, timeout=seconds
                )
        if self._progress.cancel_reason is not None:
            return True
        self._progress.completed_steps.append(GRACE_PERIOD)
        return False

    async def _revoke_all(self, plan: OffboardingPlan, options: dict[str, Any]) -> bool:
        """Every pending invitation at once; each one that fails is recorded, not fatal
        (the offboard step revokes what is still pending in its own save)."""

        async def end(invitation_id: UUID) -> None:
            outcome: CompensationOutcome = await workflow.execute_activity_method(
                OnboardingActivities.end_invitation,
                RevokeInput(invitation_id=invitation_id, reason=ORGANIZATION_OFFBOARDED),
                **options,
            )
            # Revoked now, or before (a retry); not one accepted or expired meanwhile.
            if outcome.outcome == "done" or outcome.detail == ALREADY_COMPENSATED:
                self._progress.revoked_invitation_ids.append(invitation_id)

        results = await asyncio.gather(
            *(end(i) for i in plan.pending_invitation_ids), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                self._record(REVOKE_INVITATIONS, result)
        return not any(isinstance(r, BaseException) for r in results)

    async def _step(self, name: str, action: Awaitable[object]) -> bool:
        """Run one step to its end; a failure is recorded and the next step still runs."""
        self._progress.current_step = name
        try:
            outcome = await action
        except (ActivityError, ApplicationError) as exc:
            if is_cancelled_exception(exc):
                raise
            self._record(name, exc)
            return False
        if outcome is False:
            return False
        self._progress.completed_steps.append(name)
        return True

    def _record(self, step: str, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError) or (
            isinstance(exc, ActivityError | ApplicationError) and is_cancelled_exception(exc)
        ):
            raise exc
        self._progress.errors.append(
            StepError(
                step=step,
                error_type=failure_type(exc) or type(exc).__name__,
                message=describe(exc),
            )
        )

    def _failed(self, spec: OffboardingInput) -> OffboardingResult:
        self._progress.state = "failed"
        self._progress.current_step = None
        steps = ", ".join(sorted({e.step for e in self._progress.errors}))
        raise ApplicationError(
            f"offboarding of {spec.slug!r} did not finish ({steps}); start it again to retry",
            self.progress(),
            type=OFFBOARDING_FAILED,
            non_retryable=True,
        )
