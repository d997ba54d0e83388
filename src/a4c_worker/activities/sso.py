"""The single sign-on activities: check an organization's provider, then record each step
of its configuration (try, tested, activate, abandon) on its ``SSOConnection``.

The check (:func:`a4c_sso.discovery.validate_provider`) fetches the provider's discovery
document and keys through the outbound SSRF rules (``self.sso_policy``: https only in
production, private addresses only with ``SSO_ALLOW_PRIVATE_ADDRESSES``). A refusal
leaves as an ``ApplicationError`` typed by its class (``IssuerMismatch``,
``NoUsableKey``...), retryable only when asking again can help (too slow, unreachable);
its text quotes at most a short printable excerpt of what the provider sent.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from temporalio import activity
from temporalio.exceptions import ApplicationError

from a4c_domain.views import SSOConnectionView
from a4c_outbound.transport import Outbound
from a4c_sso.discovery import ProviderMetadata, validate_provider
from a4c_sso.exchange import SignInClaims, exchange_code
from a4c_worker.activities.base import SYSTEM, ActivityBase, temporal_errors
from a4c_worker.contracts import (
    InviteeCodeInput,
    SignInCode,
    SSOAbandonInput,
    SSOActivateInput,
    SSOCodeInput,
    SSOConfigureInput,
    SSOConnectionOutcome,
    SSODeactivateInput,
    SSOProviderInput,
    SSOTestInput,
)
from a4c_worker.sealing import SealedSecretError

# The run's error when the worker cannot open client secrets (no or another key ring).
SSO_KEYS_MISSING = "SSOSecretKeysMissing"


def sso_outcome(view: SSOConnectionView) -> SSOConnectionOutcome:
    return SSOConnectionOutcome(
        organization_id=view.organization_id,
        status=view.status,
        generation=view.generation,
        active_generation=view.active_generation,
        pending_generation=view.pending_generation,
        written=view.position is not None,
    )


class SSOActivities(ActivityBase):
    @activity.defn
    async def validate_sso_provider(self, input: SSOProviderInput) -> ProviderMetadata:
        """The provider's metadata, once its discovery document and keys pass the checks."""
        with temporal_errors():
            async with Outbound(self.sso_policy) as outbound:
                return await validate_provider(input.issuer, outbound)

    @activity.defn
    async def configure_sso(self, input: SSOConfigureInput) -> SSOConnectionOutcome:
        """Try this configuration (its number in ``generation``); the active one stays."""
        view = await self._domain(
            self.app.configure_sso,
            organization_id=input.organization_id,
            issuer=input.issuer,
            client_id=input.client_id,
            client_secret=input.client_secret,
        )
        return sso_outcome(view)

    @activity.defn
    async def record_sso_test(self, input: SSOTestInput) -> SSOConnectionOutcome:
        view = await self._domain(
            self.app.record_sso_test,
            organization_id=input.organization_id,
            generation=input.generation,
            subject=input.subject,
            email_domain=input.email_domain,
        )
        return sso_outcome(view)

    @activity.defn
    async def activate_sso(self, input: SSOActivateInput) -> SSOConnectionOutcome:
        view = await self._domain(
            self.app.activate_sso,
            organization_id=input.organization_id,
            generation=input.generation,
            authorization_endpoint=input.authorization_endpoint,
        )
        return sso_outcome(view)

    @activity.defn
    async def abandon_sso_configuration(self, input: SSOAbandonInput) -> SSOConnectionOutcome:
        """Stop trying configuration ``generation``; the active one stays (a no-op once
        it was replaced, activated or abandoned)."""
        view = await self._domain(
            self.app.abandon_sso_configuration,
            organization_id=input.organization_id,
            generation=input.generation,
            reason=input.reason,
        )
        return sso_outcome(view)

    @activity.defn
    async def exchange_sso_code(self, input: SSOCodeInput) -> SignInClaims:
        """Exchange a sign-in's code at the organization's provider (configuration
        ``generation``, else the one in force) and verify its ID token: the verified
        claims only. The client secret is opened here and nowhere else. A sign-in that
        proves nothing is a non-retryable ``CodeRejected``, ``InvalidIDToken`` or
        ``EmailNotVerified``; a provider that cannot be asked retries as the check does."""
        return await self._exchange(input.organization_id, input.generation, input)

    @activity.defn
    async def exchange_invitee_sso_code(self, input: InviteeCodeInput) -> SignInClaims:
        """An invitee's sign-in through their organization's provider in force, exchanged
        and verified as :meth:`exchange_sso_code` does (the invitation names the
        organization; ``SSOConfigurationNotPending`` when none is in force)."""
        invitation = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        return await self._exchange(invitation.organization_id, None, input)

    async def _exchange(
        self, organization_id: UUID, generation: int | None, sign_in: SignInCode
    ) -> SignInClaims:
        credentials = await self._domain(
            self.app.get_sso_client_credentials, organization_id, generation
        )
        if self.sso_keys is None:
            raise ApplicationError(
                "SSO_SECRET_KEYS is not set on the worker: it cannot open the client secret",
                type=SSO_KEYS_MISSING,
                non_retryable=True,
            )
        try:
            secret = self.sso_keys.open(credentials.sealed_client_secret)
        except SealedSecretError as error:
            raise ApplicationError(str(error), type=SSO_KEYS_MISSING, non_retryable=True) from None
        with temporal_errors():
            async with Outbound(self.sso_policy) as outbound:
                metadata = await validate_provider(credentials.issuer, outbound)
                return await exchange_code(
                    metadata,
                    outbound,
                    client_id=credentials.client_id,
                    client_secret=secret,
                    code=sign_in.code,
                    code_verifier=sign_in.code_verifier,
                    redirect_uri=sign_in.redirect_uri,
                    nonce=sign_in.nonce,
                )

    @activity.defn
    async def deactivate_sso(self, input: SSODeactivateInput) -> SSOConnectionOutcome:
        """End single sign-on for the organization (none in force: nothing written)."""
        view = await self._domain(
            self.app.deactivate_sso, organization_id=input.organization_id, reason=input.reason
        )
        return sso_outcome(view)

    def sso_activities(self) -> list[Any]:
        """These activities, bound, for ``Worker(activities=...)``."""
        return [
            self.validate_sso_provider,
            self.configure_sso,
            self.record_sso_test,
            self.activate_sso,
            self.abandon_sso_configuration,
            self.deactivate_sso,
            self.exchange_sso_code,
            self.exchange_invitee_sso_code,
        ]
