"""InvitationWorkflow: one invitation from sending to accepted, revoked or expired.

Issues the invitation first when its input says so, mails it (unless the bootstrap did),
then waits for ``accept``, ``revoke`` or ``resend`` (limited by ``resends``), the
``invitation_ended`` signal, a reminder and the expiry. No token in any form that lets
someone accept is ever in its history: the ``accept`` validator checks a proof against a
hash of it, with no I/O. Why, and the patches: docs/design/workflows.md.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from a4c_domain.identity import SignInIdentity, sso_user_id
    from a4c_sso.exchange import SignInClaims
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.contracts import (
        INVITATION_ENDED_SIGNAL,
        AcceptInput,
        InvitationRef,
        InviteeCodeInput,
        MailKind,
        ReissueInput,
        RevokeInput,
        proof_check,
    )
    from a4c_worker.workflows.invitation_calls import issue, send_mail
    from a4c_worker.workflows.invitation_rules import (
        SETTLED,
        STORED_STATE,
        Refusal,
        next_deadline,
        refusal_error,
        refusal_fails_update,
        refusal_of,
        require_pending,
        require_resend_allowed,
        require_valid_reason,
    )
    from a4c_worker.workflows.invitation_state import InvitationBook
    from a4c_worker.workflows.models import (
        AcceptRequest,
        InvitationInput,
        InvitationStatus,
        InvitationToIssue,
        SSOAcceptRequest,
    )
    from a4c_worker.workflows.policies import step_options, until_answered
    from a4c_worker.workflows.saga import describe, failure_type

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
        self._book = InvitationBook()
        self._deadline_moved = False
        self._lock = asyncio.Lock()
        self._input: InvitationInput | None = input
        # Started before the validator checked proofs (docs/design/workflows.md).
        self._legacy = False
        # The domain's refusal to issue this run's invitation.
        self._refusal: Refusal | None = None
        # The invitation_ended signal came: read the stored invitation.
        self._look_at_store = False
        # Whether the invitation exists (or was refused): what ``issued`` waits for. Only
        # a fresh run with ``issue`` still has to issue it.
        self._issue_settled = input.issue is None or input.carried is not None
        if input.carried is not None:
            # Here, not in run(): an update in the first activation must see it.
            self._book.resume(input.carried)
            self._book.expires_at = input.expires_at

    # --- interface ------------------------------------------------------------------

    @workflow.query
    def status(self) -> InvitationStatus:
        return self._book.status(self._spec.invitation_id)

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
            raise refusal_error(self._refusal)
        if request != self._spec.issue:
            try:
                await issue(self._spec, request)
            except ActivityError as exc:  # fails this update only: the run's invitation stands
                raise refusal_error(refusal_of(exc)) from None
        return self.status()

    @issued.validator
    def _validate_issued(self, request: InvitationToIssue) -> None:
        if request.invitation_id != self._spec.invitation_id:
            raise ApplicationError(
                f"the request is not for invitation {self._spec.invitation_id}",
                type="InvalidCommand",
                non_retryable=True,
            )

    @workflow.update
    async def accept(self, request: AcceptRequest) -> InvitationStatus:
        async with self._lock:
            require_pending(self._book.state)
            # A resend may have moved the token on while this update waited for the lock.
            self._require_expected_proof(request.token_proof)
            await self._accept(
                AcceptInput(
                    invitation_id=self._spec.invitation_id,
                    token_proof=request.token_proof,
                    user_id=request.user_id,
                    identity=request.identity,
                )
            )
        return self.status()

    @accept.validator
    def _validate_accept(self, request: AcceptRequest) -> None:
        self._require_acceptable(request.token_proof)

    @workflow.update
    async def accept_with_sso(self, request: SSOAcceptRequest) -> InvitationStatus:
        """Accept as whoever the organization's provider vouches for: the sign-in's code
        is exchanged and verified by the worker (a sign-in that proves nothing fails this
        update with its type: ``CodeRejected``, ``InvalidIDToken``, ``EmailNotVerified``),
        then the domain accepts if the verified address is the invited one and the
        provider is the one the organization's single sign-on requires."""
        async with self._lock:
            require_pending(self._book.state)
            self._require_expected_proof(request.token_proof)
            claims: SignInClaims = await refusal_fails_update(
                workflow.execute_activity_method(
                    OnboardingActivities.exchange_invitee_sso_code,
                    InviteeCodeInput(
                        invitation_id=self._spec.invitation_id,
                        code=request.code,
                        code_verifier=request.code_verifier,
                        redirect_uri=request.redirect_uri,
                        nonce=request.nonce,
                    ),
                    **step_options(self._spec.activities),
                )
            )
            await self._accept(
                AcceptInput(
                    invitation_id=self._spec.invitation_id,
                    token_proof=request.token_proof,
                    user_id=sso_user_id(claims.issuer, claims.subject),
                    identity=SignInIdentity(
                        issuer=claims.issuer, subject=claims.subject, email=claims.email
                    ),
                )
            )
        return self.status()

    @accept_with_sso.validator
    def _validate_accept_with_sso(self, request: SSOAcceptRequest) -> None:
        self._require_acceptable(request.token_proof)

    async def _accept(self, accept: AcceptInput) -> None:
        outcome = await refusal_fails_update(
            workflow.execute_activity_method(
                OnboardingActivities.accept_invitation,
                accept,
                **until_answered(self._spec.activities),
            )
        )
        self._book.state = "accepted"
        self._book.accepted_by = accept.user_id
        if accept.identity is not None:
            self._book.accepted_issuer = accept.identity.issuer
            self._book.accepted_subject = accept.identity.subject
        self._book.generation = outcome.token_generation

    def _require_acceptable(self, token_proof: str) -> None:
        require_pending(self._book.state)
        if self._book.proof_check is None and not self._legacy:
            raise ApplicationError(
                "the invitation is starting; try again in a moment",
                type=NOT_READY,
                non_retryable=True,
            )
        self._require_expected_proof(token_proof)

    def _require_expected_proof(self, proof: str) -> None:
        expected = self._book.proof_check
        if expected is not None and not hmac.compare_digest(proof_check(proof), expected):
            raise ApplicationError(
                f"the token does not match invitation {self._spec.invitation_id}",
                type="InvalidToken",
                non_retryable=True,
            )

    @workflow.update
    async def revoke(self, reason: str) -> InvitationStatus:
        async with self._lock:
            require_pending(self._book.state)
            await refusal_fails_update(
                workflow.execute_activity_method(
                    OnboardingActivities.revoke_invitation,
                    RevokeInput(invitation_id=self._spec.invitation_id, reason=reason),
                    **step_options(self._spec.activities),
                )
            )
            self._book.state = "revoked"
        return self.status()

    @revoke.validator
    def _validate_revoke(self, reason: str) -> None:
        require_pending(self._book.state)
        require_valid_reason(reason)

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
            require_pending(self._book.state)
            # Another resend may have gone out while this one waited for the lock.
            if workflow.patched(RESEND_LIMIT_PATCH):
                self._require_resend_allowed()
            expires_at = workflow.now() + timedelta(seconds=self._spec.ttl_seconds)
            outcome = await refusal_fails_update(
                workflow.execute_activity_method(
                    OnboardingActivities.reissue_token,
                    ReissueInput(
                        invitation_id=self._spec.invitation_id,
                        token_generation=self._book.generation + 1,
                        expires_at=expires_at,
                    ),
                    **step_options(self._spec.activities),
                )
            )
            self._book.generation = outcome.token_generation
            self._book.resends += 1
            if workflow.patched(PROOF_CHECK_ON_RESEND_PATCH):
                await self._fetch_proof_check()
            self._book.expires_at = outcome.expires_at
            self._book.reminder_sent = False
            self._deadline_moved = True
            await self._send("invitation")
        return self.status()

    @resend.validator
    def _validate_resend(self) -> None:
        require_pending(self._book.state)
        self._require_resend_allowed()

    def _require_resend_allowed(self) -> None:
        spec = self._spec
        require_resend_allowed(self._book, spec.invitation_id, spec.resends, workflow.now())

    # --- run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: InvitationInput) -> InvitationStatus:
        self._input = input
        if input.carried is None:
            self._book.expires_at = input.expires_at or workflow.now() + timedelta(
                seconds=input.ttl_seconds
            )
            if input.already_sent:  # by the bootstrap, just before it started this run
                self._book.last_mailed_at = workflow.now()
            async with self._lock:
                # Only inputs with ``issue`` (which no run before it had) take this step;
                # older inputs replay exactly as recorded, so no workflow.patched here.
                pending = True
                if input.issue is not None:
                    await self._issue(input.issue)
                    pending = self._book.state == "pending"  # not refused, nor settled before
                if pending:
                    if workflow.patched(PROOF_CHECK_PATCH):
                        await self._fetch_proof_check()
                    else:
                        self._legacy = True
                    if input.already_sent:
                        self._book.emails_sent = 1
                    else:
                        await self._send("invitation")
            if self._refusal is not None:
                # Nothing was stored: the run fails with the domain's refusal, once every
                # update (``issued`` above all) has had its answer.
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise refusal_error(self._refusal)
        while self._book.state == "pending":
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
            outcome = await issue(self._spec, request)
        except ActivityError as exc:
            self._book.state = "refused"
            self._refusal = refusal_of(exc)
            self._book.last_error = describe(exc)
            self._book.expires_at = None
        else:
            # The stored invitation's, which an earlier identical invite may have set (and
            # a run of a workflow id whose last run failed may find it settled already).
            self._book.generation = outcome.token_generation
            self._book.expires_at = outcome.expires_at
            self._book.state = STORED_STATE.get(outcome.status, "pending")
        self._issue_settled = True

    async def _settle_from_store(self) -> None:
        """End as the stored invitation did (revoked, accepted...), if it has ended."""
        async with self._lock:
            self._look_at_store = False
            if self._book.state != "pending":
                return
            outcome = await workflow.execute_activity_method(
                OnboardingActivities.look_up_invitation,
                InvitationRef(invitation_id=self._spec.invitation_id),
                **until_answered(self._spec.activities),
            )
            self._book.state = STORED_STATE.get(outcome.status, "pending")

    async def _fetch_proof_check(self) -> None:
        outcome = await workflow.execute_activity_method(
            OnboardingActivities.accept_proof_check,
            InvitationRef(invitation_id=self._spec.invitation_id),
            **until_answered(self._spec.activities),
        )
        self._book.proof_check = outcome.proof_check

    # --- continue-as-new -----------------------------------------------------------

    def _history_long(self) -> bool:
        """Time to continue as new (only runs that check proofs: their history is new)."""
        if self._book.proof_check is None:
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
        if self._book.state != "pending" or self._look_at_store:
            return  # the loop looks at the store first (the flag is not carried over)
        carried = self._book.carry()
        workflow.continue_as_new(
            self._spec.model_copy(
                update={
                    "expires_at": self._book.expires_at,
                    "already_sent": True,
                    "carried": carried,
                }
            )
        )

    @property
    def _spec(self) -> InvitationInput:
        assert self._input is not None
        return self._input

    async def _wait_for_next_deadline(self) -> None:
        now = workflow.now()
        deadline, reminding = next_deadline(self._book, self._spec.reminder_before_seconds, now)
        self._deadline_moved = False
        if deadline > now:
            try:
                await workflow.wait_condition(
                    lambda: (
                        self._book.state != "pending"
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
            if self._book.state != "pending" or self._deadline_moved:
                return
            if reminding:
                self._book.reminder_sent = True
                await self._send("reminder")
            else:
                await self._expire()

    async def _expire(self) -> None:
        try:
            await workflow.execute_activity_method(
                OnboardingActivities.expire_invitation,
                InvitationRef(invitation_id=self._spec.invitation_id),
                # The timer is the authority.
                **until_answered(self._spec.activities),
            )
            self._book.state = "expired"
        except ActivityError as exc:
            kind = failure_type(exc)
            if kind in SETTLED:
                self._book.state = SETTLED[kind]
            elif kind == "InvitationNotYetExpired":
                await asyncio.sleep(NOT_YET_EXPIRED_PAUSE.total_seconds())
            else:
                raise

    def _send(self, kind: MailKind) -> Awaitable[None]:
        return send_mail(self._book, self._spec, kind)
