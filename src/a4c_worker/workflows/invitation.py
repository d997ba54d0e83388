"""InvitationWorkflow: one invitation from sending to accepted, revoked or expired.

Issues the invitation first when its input says which (``issue``: an invitation issued
on its own, through :func:`a4c_worker.client.invite`; the ``issued`` update tells the
starter the outcome, and a refusal by the domain fails the run with that refusal's
type, nothing stored). Then sends the mail (unless the bootstrap already did) and
waits for the ``accept`` or ``revoke`` update, or for the expiry timer, sending a
reminder ``reminder_before`` ahead of it. ``resend`` moves to the next token
generation (the old link stops working), restarts the expiry clock and mails the new
link — at most ``resends.max_resends`` times, and never within ``resends.cooldown_seconds``
of the last mail (``TooManyResends``, ``ResendTooSoon``; the first detail is the seconds
to wait). The limit lives in this workflow's state, so it holds whichever API replica or
worker process asks.

The invitation can also end outside this workflow: deactivating its organization, or a
newer generation of the same address, revokes it in the store. The activity that does
so sends the ``invitation_ended`` signal; the run then reads the stored invitation and
ends with its state, instead of waiting for its expiry.

Update validators only look at the workflow's own state (no I/O): an update the
validator rejects is never written to history. Changes to the invitation are
serialised by a lock, so a timer that fires while an accept is in flight cannot expire
the invitation under it.

How an accept proves the token, and why nothing in history can be used to accept
(DESIGN: no token in any form that lets someone accept, in workflow history):

- The caller sends ``accept_proof(token)`` (a domain-separated SHA-256), never the
  token. Update arguments the validator accepts are recorded in history.
- The workflow keeps only ``proof_check(proof)``, a hash of the expected proof, read
  from the ``accept_proof_check`` activity when the run starts and again after every
  ``resend`` (a new token generation). That value is in history (activity result,
  continue-as-new input); it cannot be turned back into a proof.
- The ``accept`` validator compares the hash of the presented proof with it in
  constant time and rejects a wrong one (``InvalidToken``): a wrong proof never reaches
  history, costs no activity, and cannot use up Temporal's per-execution update limit
  (which used to jam an invitation: past it, the right accept, revoke and resend were
  refused). The accept activity still recomputes the token and the domain verifies
  the token hash: the workflow's check is a gate, not the authority.
- So the only proof history ever holds is the right one, in the accept that uses it.
  That accept's activity retries until the store answers, so it ends accepted, or
  refused because the invitation is no longer pending: either way the proof is dead.
  A proof of an older generation is dead after ``resend``.

Wrong attempts are counted and throttled outside the workflow, by the worker
(:mod:`a4c_worker.attempts`: a validator cannot change state, and a count in state would
have to be written to history). The run continues as new, carrying its state, before
its history reaches ``history_events_before_continue`` events or when Temporal suggests
it (near the history or update limits).

Executions started before these checks (no ``accept-proof-check`` marker) keep the old
path — the activity checks the proof, wrong ones reach history — until a ``resend``
fetches the check; one resent before the upgrade keeps it until it ends (a patch's
answer is fixed per execution). Either way it ends by its expiry at the latest.

Longer than most modules: one workflow class and its patches, read together.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import TypeAdapter, ValidationError

    from a4c_domain.commands import Reason, field_errors
    from a4c_domain.errors import ResendTooSoon, TooManyAttempts, TooManyResends
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.contracts import (
        INVITATION_ENDED_SIGNAL,
        AcceptInput,
        EmailFailureInput,
        InvitationOutcome,
        InvitationRef,
        IssueInvitationInput,
        MailKind,
        ReissueInput,
        RevokeInput,
        SendMailInput,
        proof_check,
    )
    from a4c_worker.workflows.models import (
        AcceptRequest,
        InvitationCarry,
        InvitationInput,
        InvitationState,
        InvitationStatus,
        InvitationToIssue,
    )
    from a4c_worker.workflows.policies import MAX_INTERVAL, step_options
    from a4c_worker.workflows.saga import application_cause, describe, failure_type

T = TypeVar("T")
# A domain refusal to issue: its type (the domain error's class name), message, details.
Refusal = tuple[str, str, tuple[Any, ...]]

# Outcomes of the expire command that mean "already settled some other way".
_SETTLED: dict[str, InvitationState] = {
    "InvitationAlreadyAccepted": "accepted",
    "InvitationRevoked": "revoked",
    "InvitationExpired": "expired",
}
# The stored invitation's status as this workflow's state (all but "pending").
_STORED_STATE: dict[str, InvitationState] = {
    "accepted": "accepted",
    "revoked": "revoked",
    "expired": "expired",
}
# The domain allows for clock drift; if our timer still beat its clock, try again soon.
NOT_YET_EXPIRED_PAUSE = timedelta(seconds=5)
# An accept that came before the run fetched its proof check (the caller retries).
NOT_READY = "InvitationNotReady"
# Patches: the proof check fetched when a run starts, and after each resend.
PROOF_CHECK_PATCH = "accept-proof-check"
PROOF_CHECK_ON_RESEND_PATCH = "accept-proof-check-on-resend"
# Patches (0.5.0): a resend checks the limit again once it holds the lock; the
# ``invitation_ended`` signal makes the run read the stored invitation.
RESEND_LIMIT_PATCH = "resend-limit"
ENDED_SIGNAL_PATCH = "invitation-ended-signal"


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
        # proof_check() of the current token's proof; None until fetched.
        self._proof_check: str | None = None
        # Started before the validator checked proofs (see the module docstring).
        self._legacy = False
        # The domain's refusal to issue this run's invitation.
        self._refusal: Refusal | None = None
        # Re-sends so far, and when the last invitation mail went out (the cooldown's start).
        self._resends = 0
        self._last_mailed_at: datetime | None = None
        # The invitation_ended signal came: read the stored invitation.
        self._look_at_store = False
        # Whether the invitation exists (or was refused): what ``issued`` waits for. Only
        # a fresh run with ``issue`` still has to issue it.
        self._issue_settled = input.issue is None or input.carried is not None
        if input.carried is not None:
            # Here, not in run(): an update in the first activation must see it.
            self._resume(input.carried)
            self._expires_at = input.expires_at

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
            resends=self._resends,
        )

    @workflow.update
    async def issued(self, request: InvitationToIssue) -> InvitationStatus:
        """The status once the invitation is issued, or the domain's refusal (its type).

        Sent with the start (update-with-start), so the starter learns synchronously
        whether the invitation exists. A request other than the one this run issued (a
        different role or name, or a run started by a bootstrap) is put to the domain
        again: the same invitation is a no-op, a different one its ``InvitationConflict``.
        """
        await workflow.wait_condition(lambda: self._issue_settled)
        if self._refusal is not None:
            raise _refusal_error(self._refusal)
        if request != self._spec.issue:
            try:
                await self._issue_activity(request)
            except ActivityError as exc:  # fails this update only: the run's invitation stands
                raise _refusal_error(_refusal_of(exc)) from None
        return self.status()

    @issued.validator
    def _validate_issued(self, request: InvitationToIssue) -> None:
        if request.invitation_id != self._spec.invitation_id:
            raise ApplicationError(
                f"the request is not for invitation {self._spec.invitation_id}",
                type="InvalidCommand",
                non_retryable=True,
            )

    def _issue_activity(self, request: InvitationToIssue) -> Awaitable[InvitationOutcome]:
        return workflow.execute_activity_method(
            OnboardingActivities.issue_invitation,
            IssueInvitationInput(
                organization_id=request.organization_id,
                invitee=request.invitee,
                generation=request.generation,
                expires_at=workflow.now() + timedelta(seconds=self._spec.ttl_seconds),
            ),
            # Until the store answers: a refusal ends it, and an invite that committed
            # but timed out is found again (idempotent), so nothing is left half-written.
            **_until_answered(self._spec),
        )

    @workflow.update
    async def accept(self, request: AcceptRequest) -> InvitationStatus:
        async with self._lock:
            self._require_pending()
            # A resend may have moved the token on while this update waited for the lock.
            self._require_expected_proof(request.token_proof)
            outcome = await _refusal_fails_update(
                workflow.execute_activity_method(
                    OnboardingActivities.accept_invitation,
                    AcceptInput(
                        invitation_id=self._spec.invitation_id,
                        token_proof=request.token_proof,
                        user_id=request.user_id,
                    ),
                    **_until_answered(self._spec),
                )
            )
            self._state = "accepted"
            self._accepted_by = request.user_id
            self._generation = outcome.token_generation
        return self.status()

    @accept.validator
    def _validate_accept(self, request: AcceptRequest) -> None:
        self._require_pending()
        if self._proof_check is None and not self._legacy:
            raise ApplicationError(
                "the invitation is starting; try again in a moment",
                type=NOT_READY,
                non_retryable=True,
            )
        self._require_expected_proof(request.token_proof)

    def _require_expected_proof(self, proof: str) -> None:
        if self._proof_check is not None and not hmac.compare_digest(
            proof_check(proof), self._proof_check
        ):
            raise ApplicationError(
                f"the token does not match invitation {self._spec.invitation_id}",
                type="InvalidToken",
                non_retryable=True,
            )

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
        try:
            _REASON.validate_python(reason)
        except ValidationError as exc:  # the caller's terms, not pydantic's internals
            problems = "; ".join(f"reason: {e['message']}" for e in field_errors(exc))
            raise ApplicationError(
                f"invalid input: {problems}", type="InvalidCommand", non_retryable=True
            ) from None

    @workflow.signal(name=INVITATION_ENDED_SIGNAL)
    def invitation_ended(self) -> None:
        """The invitation may have ended in the store (organization deactivated, a newer
        generation issued): look. The store decides, so a stray signal changes nothing."""
        # Executions that ignored this signal before it had a handler replay without it.
        if workflow.patched(ENDED_SIGNAL_PATCH):
            self._look_at_store = True

    @workflow.update
    async def resend(self) -> InvitationStatus:
        """New token generation, new expiry, new mail; the old link stops working."""
        async with self._lock:
            self._require_pending()
            # Another resend may have gone out while this one waited for the lock.
            if workflow.patched(RESEND_LIMIT_PATCH):
                self._require_resend_allowed()
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
            self._resends += 1
            if workflow.patched(PROOF_CHECK_ON_RESEND_PATCH):
                await self._fetch_proof_check()
            self._expires_at = outcome.expires_at
            self._reminder_sent = False
            self._deadline_moved = True
            await self._send("invitation")
        return self.status()

    @resend.validator
    def _validate_resend(self) -> None:
        self._require_pending()
        self._require_resend_allowed()

    def _require_resend_allowed(self) -> None:
        """``TooManyResends`` past the cap, ``ResendTooSoon`` within the cooldown."""
        limit, now = self._spec.resends, workflow.now()
        invitation = self._spec.invitation_id
        refused: TooManyAttempts | None = None
        if self._resends >= limit.max_resends:
            until_expiry = (self._expires_at - now).total_seconds() if self._expires_at else 0
            refused = TooManyResends(invitation, limit.max_resends, max(1.0, until_expiry))
        elif self._last_mailed_at is not None:
            ready_at = self._last_mailed_at + timedelta(seconds=limit.cooldown_seconds)
            if ready_at > now:
                refused = ResendTooSoon(invitation, (ready_at - now).total_seconds())
        if refused is not None:
            raise ApplicationError(
                str(refused), refused.retry_after, type=type(refused).__name__, non_retryable=True
            )

    def _require_pending(self) -> None:
        if self._state == "refused":
            raise ApplicationError(
                "the invitation was never issued (refused)",
                type="InvitationNotPending",
                non_retryable=True,
            )
        if self._state != "pending":
            raise ApplicationError(
                f"invitation is {self._state}", type="InvitationNotPending", non_retryable=True
            )

    # --- run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: InvitationInput) -> InvitationStatus:
        self._input = input
        if input.carried is None:
            self._expires_at = input.expires_at or workflow.now() + timedelta(
                seconds=input.ttl_seconds
            )
            if input.already_sent:  # by the bootstrap, just before it started this run
                self._last_mailed_at = workflow.now()
            async with self._lock:
                # Only inputs with ``issue`` (which no run before it had) take this step;
                # older inputs replay exactly as recorded, so no workflow.patched here.
                pending = True
                if input.issue is not None:
                    await self._issue(input.issue)
                    pending = self._state == "pending"  # not refused, nor settled before
                if pending:
                    if workflow.patched(PROOF_CHECK_PATCH):
                        await self._fetch_proof_check()
                    else:
                        self._legacy = True
                    if input.already_sent:
                        self._emails_sent = 1
                    else:
                        await self._send("invitation")
            if self._refusal is not None:
                # Nothing was stored: the run fails with the domain's refusal, once every
                # update (``issued`` above all) has had its answer.
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise _refusal_error(self._refusal)
        while self._state == "pending":
            if self._look_at_store:
                await self._settle_from_store()
            elif self._history_long():
                await self._continue_as_new()
            else:
                await self._wait_for_next_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _issue(self, request: InvitationToIssue) -> None:
        """Issue the invitation, or record the domain's refusal (``state`` "refused")."""
        try:
            outcome = await self._issue_activity(request)
        except ActivityError as exc:
            self._state = "refused"
            self._refusal = _refusal_of(exc)
            self._last_error = describe(exc)
            self._expires_at = None
        else:
            # The stored invitation's, which an earlier identical invite may have set (and
            # a run of a workflow id whose last run failed may find it settled already).
            self._generation = outcome.token_generation
            self._expires_at = outcome.expires_at
            self._state = _STORED_STATE.get(outcome.status, "pending")
        self._issue_settled = True

    async def _settle_from_store(self) -> None:
        """End as the stored invitation did (revoked, accepted...), if it has ended."""
        async with self._lock:
            self._look_at_store = False
            if self._state != "pending":
                return
            outcome = await workflow.execute_activity_method(
                OnboardingActivities.look_up_invitation,
                InvitationRef(invitation_id=self._spec.invitation_id),
                **_until_answered(self._spec),
            )
            self._state = _STORED_STATE.get(outcome.status, "pending")

    async def _fetch_proof_check(self) -> None:
        outcome = await workflow.execute_activity_method(
            OnboardingActivities.accept_proof_check,
            InvitationRef(invitation_id=self._spec.invitation_id),
            **_until_answered(self._spec),
        )
        self._proof_check = outcome.proof_check

    # --- continue-as-new -----------------------------------------------------------

    def _history_long(self) -> bool:
        """Time to continue as new (only runs that check proofs: their history is new)."""
        if self._proof_check is None:
            return False
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._spec.history_events_before_continue
        )

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and not self._lock.locked()
        )
        if self._state != "pending" or self._look_at_store:
            return  # the loop looks at the store first (the flag is not carried over)
        assert self._proof_check is not None
        carried = InvitationCarry(
            token_generation=self._generation,
            emails_sent=self._emails_sent,
            reminder_sent=self._reminder_sent,
            last_error=self._last_error,
            proof_check=self._proof_check,
            resends=self._resends,
            last_mailed_at=self._last_mailed_at,
        )
        workflow.continue_as_new(
            self._spec.model_copy(
                update={"expires_at": self._expires_at, "already_sent": True, "carried": carried}
            )
        )

    def _resume(self, carried: InvitationCarry) -> None:
        self._generation = carried.token_generation
        self._emails_sent = carried.emails_sent
        self._reminder_sent = carried.reminder_sent
        self._last_error = carried.last_error
        self._proof_check = carried.proof_check
        self._resends = carried.resends
        self._last_mailed_at = carried.last_mailed_at

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
                    lambda: (
                        self._state != "pending"
                        or self._deadline_moved
                        or self._history_long()
                        or self._look_at_store
                    ),
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
                # The timer is the authority.
                **_until_answered(self._spec),
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
        if kind == "invitation":  # a refused one too: the cooldown spares the inbox
            self._last_mailed_at = workflow.now()
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


def _until_answered(spec: InvitationInput) -> dict[str, Any]:
    """Options for a step that retries until the store answers (a refusal still ends it)."""
    return {
        "start_to_close_timeout": timedelta(seconds=spec.activities.timeout_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=spec.activities.retry_initial_interval_seconds),
            maximum_interval=MAX_INTERVAL,
        ),
    }


def _refusal_of(exc: ActivityError) -> Refusal:
    cause = application_cause(exc)
    if cause is None:
        return ("ActivityFailed", describe(exc), ())
    return (cause.type or "ActivityFailed", cause.message, tuple(cause.details))


def _refusal_error(refusal: Refusal) -> ApplicationError:
    """The refusal as the caller gets it: the domain's type, message and details."""
    kind, message, details = refusal
    return ApplicationError(message, *details, type=kind, non_retryable=True)


async def _refusal_fails_update(call: Awaitable[T]) -> T:
    """A command refused by the domain fails the update (the caller sees why), not the run."""
    try:
        return await call
    except ActivityError as exc:
        raise ApplicationError(
            describe(exc), type=failure_type(exc) or "ActivityFailed", non_retryable=True
        ) from None
