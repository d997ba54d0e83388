"""InvitationWorkflow: one invitation from sending to accepted, revoked or expired.

Sends the mail (unless the bootstrap already did), then waits for the ``accept`` or
``revoke`` update, or for the expiry timer, sending a reminder ``reminder_before``
ahead of it. ``resend`` moves to the next token generation (the old link stops
working), restarts the expiry clock and mails the new link.

Update validators only look at the workflow's own state (no I/O): an update for an
invitation that is no longer pending is rejected and never written to history. The
token is checked by the accept activity; a wrong one fails that update (the caller
sees ``InvalidToken``) and the invitation keeps waiting. ``accept`` carries only a
proof of the token (:func:`~a4c_worker.workflows.models.accept_proof`): update
arguments are recorded in history, and the token itself must never be.

Changes to the invitation are serialised by a lock, so a timer that fires while an
accept is in flight cannot expire the invitation under it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import TypeAdapter, ValidationError

    from a4c_domain.commands import Reason
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.workflows.models import (
        AcceptInput,
        AcceptRequest,
        EmailFailureInput,
        InvitationInput,
        InvitationRef,
        InvitationState,
        InvitationStatus,
        MailKind,
        ReissueInput,
        RevokeInput,
        SendMailInput,
    )
    from a4c_worker.workflows.policies import MAX_INTERVAL, step_options
    from a4c_worker.workflows.saga import describe, failure_type

T = TypeVar("T")

# Outcomes of the expire command that mean "already settled some other way".
_SETTLED: dict[str, InvitationState] = {
    "InvitationAlreadyAccepted": "accepted",
    "InvitationRevoked": "revoked",
    "InvitationExpired": "expired",
}
# The domain allows for clock drift; if our timer still beat its clock, try again soon.
NOT_YET_EXPIRED_PAUSE = timedelta(seconds=5)


@workflow.defn(name="InvitationWorkflow", failure_exception_types=[ValidationError])
class InvitationWorkflow:
    # The input is taken here, not in run(): an update can be delivered in the very first
    # activation, before run() starts, and its handler needs the input.
    @workflow.init
    def __init__(self, input: InvitationInput) -> None:
        self._state: InvitationState = "pending"
        self._generation = 1
        self._expires_at: datetime | None = None
        self._emails_sent = 0
        self._reminder_sent = False
        self._accepted_by: str | None = None
        self._last_error: str | None = None
        self._deadline_moved = False
        self._lock = asyncio.Lock()
        self._input: InvitationInput | None = input

    # --- interface ------------------------------------------------------------------

    @workflow.query
    def status(self) -> InvitationStatus:
        assert self._input is not None
        return InvitationStatus(
            invitation_id=self._input.invitation_id,
            state=self._state,
            token_generation=self._generation,
            expires_at=self._expires_at,
            emails_sent=self._emails_sent,
            reminder_sent=self._reminder_sent,
            accepted_by=self._accepted_by,
            last_error=self._last_error,
        )

    @workflow.update
    async def accept(self, request: AcceptRequest) -> InvitationStatus:
        async with self._lock:
            self._require_pending()
            outcome = await _refusal_fails_update(
                workflow.execute_activity_method(
                    OnboardingActivities.accept_invitation,
                    AcceptInput(
                        invitation_id=self._spec.invitation_id,
                        token_proof=request.token_proof,
                        user_id=request.user_id,
                    ),
                    **step_options(self._spec.activities),
                )
            )
            self._state = "accepted"
            self._accepted_by = request.user_id
            self._generation = outcome.token_generation
        return self.status()

    @accept.validator
    def _validate_accept(self, request: AcceptRequest) -> None:
        self._require_pending()

    @workflow.update
    async def revoke(self, reason: str) -> InvitationStatus:
        async with self._lock:
            self._require_pending()
            await _refusal_fails_update(
                workflow.execute_activity_method(
                    OnboardingActivities.revoke_invitation,
                    RevokeInput(invitation_id=self._spec.invitation_id, reason=reason),
                    **step_options(self._spec.activities),
                )
            )
            self._state = "revoked"
        return self.status()

    @revoke.validator
    def _validate_revoke(self, reason: str) -> None:
        self._require_pending()
        _REASON.validate_python(reason)

    @workflow.update
    async def resend(self) -> InvitationStatus:
        """New token generation, new expiry, new mail; the old link stops working."""
        async with self._lock:
            self._require_pending()
            expires_at = workflow.now() + timedelta(seconds=self._spec.ttl_seconds)
            outcome = await _refusal_fails_update(
                workflow.execute_activity_method(
                    OnboardingActivities.reissue_token,
                    ReissueInput(
                        invitation_id=self._spec.invitation_id,
                        token_generation=self._generation + 1,
                        expires_at=expires_at,
                    ),
                    **step_options(self._spec.activities),
                )
            )
            self._generation = outcome.token_generation
            self._expires_at = outcome.expires_at
            self._reminder_sent = False
            self._deadline_moved = True
            await self._send("invitation")
        return self.status()

    @resend.validator
    def _validate_resend(self) -> None:
        self._require_pending()

    def _require_pending(self) -> None:
        if self._state != "pending":
            raise ApplicationError(
                f"invitation is {self._state}", type="InvitationNotPending", non_retryable=True
            )

    # --- run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: InvitationInput) -> InvitationStatus:
        self._input = input
        self._expires_at = input.expires_at or workflow.now() + timedelta(seconds=input.ttl_seconds)
        if input.already_sent:
            self._emails_sent = 1
        else:
            async with self._lock:
                await self._send("invitation")
        while self._state == "pending":
            await self._wait_for_next_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    @property
    def _spec(self) -> InvitationInput:
        assert self._input is not None
        return self._input

    async def _wait_for_next_deadline(self) -> None:
        assert self._expires_at is not None
        now = workflow.now()
        remind_at = self._expires_at - timedelta(seconds=self._spec.reminder_before_seconds)
        reminding = (
            not self._reminder_sent
            and self._spec.reminder_before_seconds > 0
            and now < self._expires_at
        )
        deadline = remind_at if reminding else self._expires_at
        self._deadline_moved = False
        if deadline > now:
            try:
                await workflow.wait_condition(
                    lambda: self._state != "pending" or self._deadline_moved,
                    timeout=deadline - now,
                )
                return  # settled by an update, or the deadline moved: look again
            except TimeoutError:
                pass
        async with self._lock:
            if self._state != "pending" or self._deadline_moved:
                return
            if reminding:
                self._reminder_sent = True
                await self._send("reminder")
            else:
                await self._expire()

    async def _expire(self) -> None:
        try:
            await workflow.execute_activity_method(
                OnboardingActivities.expire_invitation,
                InvitationRef(invitation_id=self._spec.invitation_id),
                start_to_close_timeout=timedelta(seconds=self._spec.activities.timeout_seconds),
                # The timer is the authority: keep trying until the store answers.
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(
                        seconds=self._spec.activities.retry_initial_interval_seconds
                    ),
                    maximum_interval=MAX_INTERVAL,
                ),
            )
            self._state = "expired"
        except ActivityError as exc:
            kind = failure_type(exc)
            if kind in _SETTLED:
                self._state = _SETTLED[kind]
            elif kind == "InvitationNotYetExpired":
                await asyncio.sleep(NOT_YET_EXPIRED_PAUSE.total_seconds())
            else:
                raise

    async def _send(self, kind: MailKind) -> None:
        """Send one mail; a failure is recorded, never fatal (the invitation still stands)."""
        options = step_options(self._spec.activities)
        try:
            outcome = await workflow.execute_activity_method(
                OnboardingActivities.send_invitation_email,
                SendMailInput(
                    invitation_id=self._spec.invitation_id,
                    organization_name=self._spec.organization_name,
                    kind=kind,
                ),
                **options,
            )
        except ActivityError as exc:
            self._last_error = describe(exc)
            if kind == "invitation":
                await workflow.execute_activity_method(
                    OnboardingActivities.record_email_failure,
                    EmailFailureInput(
                        invitation_id=self._spec.invitation_id, reason=self._last_error
                    ),
                    **options,
                )
            return
        if outcome.sent:
            self._emails_sent += 1
        else:
            self._last_error = outcome.error


_REASON: TypeAdapter[str] = TypeAdapter(Reason)


async def _refusal_fails_update(call: Awaitable[T]) -> T:
    """A command refused by the domain fails the update (the caller sees why), not the run."""
    try:
        return await call
    except ActivityError as exc:
        raise ApplicationError(
            describe(exc), type=failure_type(exc) or "ActivityFailed", non_retryable=True
        ) from None
