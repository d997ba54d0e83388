"""SSOConfigurationWorkflow: an organization's own OpenID Connect provider, from checked to
in force.

1. Check the provider (``validate_sso_provider``: its discovery document and keys). A
   refusal ends the run with the check's error type (``IssuerMismatch``,
   ``NoUsableKey``, ``ProviderTooSlow``...) and nothing is recorded.
2. Try the configuration (``configure_sso``): recorded as pending, with its
   ``generation``; the connection in force, if any, stays in force.
3. Wait for the test sign-in: an admin signs in through the organization's provider on
   an a4c page, which sends the sign-in's one-time code and PKCE verifier with the
   ``test_sign_in`` update; its handler exchanges them (``exchange_sso_code``, in the
   worker, which alone opens the client secret) and keeps only the verified subject and
   e-mail domain (never the address). A sign-in that proves nothing fails the update
   with its type (``CodeRejected``, ``InvalidIDToken``, ``EmailNotVerified``) and the
   run keeps waiting for another; ``test_failed`` is the admin saying it did not work.
   An update for another generation, while another sign-in is being exchanged, or once
   the run stopped waiting, is refused by its validator (``SSOTestRefused``) before it
   reaches history.
4. Record the test and activate the configuration, then mail ``admins`` (kind
   ``sso_activated``, one message per address and configuration; best effort).

No test within ``test_timeout_seconds`` (``SSOTestTimedOut``), a failed test
(``SSOTestFailed``) or a cancellation abandons the pending configuration: the one in
force stays. A cancellation while the configuration is being recorded leaves it
pending until the next configuration replaces it; pending is never in force.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from a4c_sso.discovery import ProviderMetadata
    from a4c_sso.exchange import SignInClaims
    from a4c_worker.activities import OnboardingActivities
    from a4c_worker.activities.organization_mail import OrganizationMailInput
    from a4c_worker.activities.sso import SSOActivities
    from a4c_worker.contracts import (
        SSOAbandonInput,
        SSOActivateInput,
        SSOCodeInput,
        SSOConfigureInput,
        SSOConnectionOutcome,
        SSOProviderInput,
        SSOTestInput,
    )
    from a4c_worker.workflows.policies import step_options
    from a4c_worker.workflows.saga import application_cause, describe
    from a4c_worker.workflows.sso_models import (
        SSO_TEST_FAILED,
        SSO_TEST_REFUSED,
        SSO_TEST_TIMED_OUT,
        SSOConfigurationInput,
        SSOConfigurationProgress,
        SSOTestFailed,
        SSOTestPassed,
        SSOTestSignIn,
    )


@workflow.defn
class SSOConfigurationWorkflow:
    def __init__(self) -> None:
        self._progress: SSOConfigurationProgress | None = None
        self._input: SSOConfigurationInput | None = None
        self._passed: SSOTestPassed | None = None
        self._failed: SSOTestFailed | None = None
        self._exchanging = False  # a test sign-in's code is being exchanged

    # --- queries and updates ------------------------------------------------------------

    @workflow.query
    def progress(self) -> SSOConfigurationProgress:
        assert self._progress is not None  # set first thing in run
        return self._progress

    @workflow.update
    async def test_sign_in(self, sign_in: SSOTestSignIn) -> SSOConfigurationProgress:
        """An admin's test sign-in: exchanged and verified by the worker; returns once
        the configuration is active (or the run ended otherwise). A sign-in that proves
        nothing fails this update with its type; the run keeps waiting."""
        assert self._input is not None  # run set it before waiting
        self._exchanging = True
        try:
            claims: SignInClaims = await workflow.execute_activity_method(
                SSOActivities.exchange_sso_code,
                SSOCodeInput(
                    organization_id=self._input.organization_id,
                    generation=sign_in.generation,
                    code=sign_in.code,
                    code_verifier=sign_in.code_verifier,
                    redirect_uri=sign_in.redirect_uri,
                    nonce=sign_in.nonce,
                ),
                **step_options(self._input.activities),
            )
            passed = SSOTestPassed(
                generation=sign_in.generation,
                subject=claims.subject,
                email_domain=claims.email_domain,
            )
        except ActivityError as exc:
            refused = application_cause(exc)
            if refused is None:
                raise
            raise ApplicationError(refused.message, type=refused.type) from None
        except ValidationError:
            raise ApplicationError(
                "the provider's subject or address is not one a4c can record",
                type="InvalidIDToken",
            ) from None
        finally:
            self._exchanging = False
        self._passed = passed
        await workflow.wait_condition(lambda: self._state in ("active", "abandoned"))
        return self.progress()

    @test_sign_in.validator
    def _validate_sign_in(self, sign_in: SSOTestSignIn) -> None:
        self._require_waiting(sign_in.generation)

    @workflow.update
    async def test_failed(self, result: SSOTestFailed) -> SSOConfigurationProgress:
        """The test sign-in failed; returns once the configuration is abandoned."""
        self._failed = result
        await workflow.wait_condition(lambda: self._state == "abandoned")
        return self.progress()

    @test_failed.validator
    def _validate_failed(self, result: SSOTestFailed) -> None:
        self._require_waiting(result.generation)

    def _require_waiting(self, generation: int) -> None:
        progress = self._progress
        if progress is None or progress.state != "waiting_for_test":
            state = "starting" if progress is None else progress.state
            raise ApplicationError(
                f"no test sign-in is awaited (the configuration is {state})",
                type=SSO_TEST_REFUSED,
            )
        if generation != progress.generation or self._passed or self._failed or self._exchanging:
            raise ApplicationError(
                f"configuration {generation} is not the one awaiting its test "
                f"({progress.generation})",
                type=SSO_TEST_REFUSED,
            )

    # --- the run ------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: SSOConfigurationInput) -> SSOConfigurationProgress:
        self._input = input
        self._progress = SSOConfigurationProgress(
            organization_id=input.organization_id,
            state="checking_provider",
            issuer=input.issuer,
            client_id=input.client_id,
        )
        metadata = await self._check_provider(input)
        self._update(
            state="configuring",
            authorization_endpoint=metadata.authorization_endpoint,
            token_endpoint=metadata.token_endpoint,
            userinfo_endpoint=metadata.userinfo_endpoint,
            jwks_uri=metadata.jwks_uri,
            signing_algorithms=list(metadata.signing_algorithms),
        )
        tried: SSOConnectionOutcome = await workflow.execute_activity_method(
            SSOActivities.configure_sso,
            SSOConfigureInput(
                organization_id=input.organization_id,
                issuer=input.issuer,
                client_id=input.client_id,
                client_secret=input.client_secret,
            ),
            **step_options(input.activities),
        )
        generation = tried.generation
        self._update(state="waiting_for_test", generation=generation)
        try:
            await workflow.wait_condition(
                lambda: self._passed is not None or self._failed is not None,
                timeout=timedelta(seconds=input.test_timeout_seconds),
            )
        except TimeoutError:
            why = f"no test sign-in within {input.test_timeout_seconds:g} s"
            await self._abandon(input, generation, why)
            raise ApplicationError(why, self.progress(), type=SSO_TEST_TIMED_OUT) from None
        except asyncio.CancelledError:
            await self._abandon(input, generation, "cancelled")
            raise
        if self._failed is not None:
            why = f"test sign-in failed: {self._failed.reason}"
            await self._abandon(input, generation, why)
            raise ApplicationError(why, self.progress(), type=SSO_TEST_FAILED)
        assert self._passed is not None
        self._update(state="activating")
        await workflow.execute_activity_method(
            SSOActivities.record_sso_test,
            SSOTestInput(
                organization_id=input.organization_id,
                generation=generation,
                subject=self._passed.subject,
                email_domain=self._passed.email_domain,
            ),
            **step_options(input.activities),
        )
        await workflow.execute_activity_method(
            SSOActivities.activate_sso,
            SSOActivateInput(
                organization_id=input.organization_id,
                generation=generation,
                authorization_endpoint=metadata.authorization_endpoint,
            ),
            **step_options(input.activities),
        )
        self._update(state="active")
        await self._mail_admins(input, generation)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.progress()

    async def _mail_admins(self, input: SSOConfigurationInput, generation: int) -> None:
        """Tell each admin it is active (one message per address and activation). Best
        effort: a mail never undoes the activation it reports."""
        for address in input.admins:
            try:
                await workflow.execute_activity_method(
                    OnboardingActivities.send_organization_mail,
                    OrganizationMailInput(
                        organization_id=input.organization_id,
                        kind="sso_activated",
                        to=address,
                        occurred_at=workflow.now(),
                        occasion=generation,
                    ),
                    **step_options(input.activities),
                )
            except ActivityError as exc:
                workflow.logger.warning("SSO activation mail not sent: %s", describe(exc))

    async def _check_provider(self, input: SSOConfigurationInput) -> ProviderMetadata:
        try:
            metadata: ProviderMetadata = await workflow.execute_activity_method(
                SSOActivities.validate_sso_provider,
                SSOProviderInput(issuer=input.issuer),
                **step_options(input.activities),
            )
        except ActivityError as exc:
            refused = application_cause(exc)
            self._update(state="refused", error=describe(exc))
            if refused is None:
                raise
            # The check's own refusal, so the caller reads its type (IssuerMismatch...).
            raise ApplicationError(
                refused.message, self.progress(), type=refused.type, non_retryable=True
            ) from None
        return metadata

    async def _abandon(self, input: SSOConfigurationInput, generation: int, why: str) -> None:
        """Stop trying this configuration; the one in force stays. Best-effort: a failure
        to record it leaves the configuration pending, which is never in force."""
        try:
            await workflow.execute_activity_method(
                SSOActivities.abandon_sso_configuration,
                SSOAbandonInput(
                    organization_id=input.organization_id, generation=generation, reason=why
                ),
                **step_options(input.activities),
            )
        except ActivityError as exc:
            workflow.logger.warning("SSO configuration not abandoned: %s", describe(exc))
        self._update(state="abandoned", error=why)
        await workflow.wait_condition(workflow.all_handlers_finished)

    # --- state ----------------------------------------------------------------------------

    @property
    def _state(self) -> str | None:
        return None if self._progress is None else self._progress.state

    def _update(self, **changes: object) -> None:
        assert self._progress is not None
        self._progress = self._progress.model_copy(update=changes)
