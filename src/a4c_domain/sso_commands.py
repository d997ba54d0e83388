"""The single sign-on and e-mail domain commands of ``OnboardingApplication`` (a mixin).

Single sign-on: configure (try a configuration), record its test sign-in, activate it,
abandon it, deactivate, and read the connection. E-mail domains: ask to verify one (the
challenge to publish), record that its challenge was found in DNS (which claims the
domain for the organization, atomically), read one, and find a domain's owner.

Every command names the organization it acts for; the aggregates' ids derive from it,
so no command reaches another organization's connection or requests. Client secrets
arrive sealed (a4c_webhooks.sealing) and never leave: views carry none. Trying,
testing, activating and asking need an organization that is not deactivated; abandoning
and deactivating (what undoing does) are always allowed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from uuid import UUID

from eventsourcing.domain import Aggregate

from a4c_domain import sso_command_models as s
from a4c_domain.application_base import ApplicationBase
from a4c_domain.commands import Reason, validate
from a4c_domain.email_domains import EmailDomainClaim, EmailDomainVerification
from a4c_domain.errors import (
    EmailDomainNotFound,
    EmailDomainTaken,
    SSOConfigurationNotPending,
    SSOConnectionNotFound,
)
from a4c_domain.fields import Hostname, Identifier, IssuerURL, SealedSecret, WebhookURL
from a4c_domain.ids import email_domain_claim_id, email_domain_verification_id
from a4c_domain.signatures import command
from a4c_domain.sso_connection import SSOClientCredentials, SSOConnection
from a4c_domain.views import EmailDomainView, SSOConnectionView

CHALLENGE_BYTES = 24  # 192 random bits: no one guesses another's challenge


class SSOCommands(ApplicationBase):
    """An organization's own sign-in provider, and the e-mail domains it proves it owns."""

    # --- single sign-on ---------------------------------------------------------------

    @command(s.ConfigureSSO)
    def configure_sso(
        self,
        *,
        organization_id: UUID,
        issuer: IssuerURL,
        client_id: Identifier,
        client_secret: SealedSecret,
    ) -> SSOConnectionView:
        """Try this configuration (its ``generation`` in the view); the one in force, if
        any, stays until this one is tested and activated. Again: a no-op."""
        cmd = validate(
            s.ConfigureSSO,
            organization_id=organization_id,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
        )
        self._get_organization(cmd.organization_id).require_not_deactivated(
            "configure single sign-on"
        )

        def decide(connection: SSOConnection | None) -> SSOConnection:
            if connection is None:
                return SSOConnection(
                    organization_id=cmd.organization_id,
                    issuer=cmd.issuer,
                    client_id=cmd.client_id,
                    client_secret=cmd.client_secret,
                )
            connection.configure(cmd.issuer, cmd.client_id, cmd.client_secret)
            return connection

        connection_id = SSOConnection.create_id(cmd.organization_id)
        connection, position = self._execute(connection_id, SSOConnection, decide)
        return SSOConnectionView.of(connection, position)

    @command(s.RecordSSOTest)
    def record_sso_test(
        self, *, organization_id: UUID, generation: int, subject: Identifier, email_domain: Hostname
    ) -> SSOConnectionView:
        """A test sign-in through configuration ``generation`` succeeded, as ``subject``
        with an address in ``email_domain`` (the first test stands)."""
        cmd = validate(
            s.RecordSSOTest,
            organization_id=organization_id,
            generation=generation,
            subject=subject,
            email_domain=email_domain,
        )
        self._get_organization(cmd.organization_id).require_not_deactivated("test single sign-on")
        return self._sso_command(
            cmd, lambda c: c.record_test(cmd.generation, cmd.subject, cmd.email_domain)
        )

    @command(s.ActivateSSO)
    def activate_sso(
        self,
        *,
        organization_id: UUID,
        generation: int,
        authorization_endpoint: WebhookURL | None = None,
    ) -> SSOConnectionView:
        """Put the tested configuration ``generation`` in force for the organization;
        ``authorization_endpoint`` (its provider's, as checked) is where its members'
        sign-ins start."""
        cmd = validate(
            s.ActivateSSO,
            organization_id=organization_id,
            generation=generation,
            authorization_endpoint=authorization_endpoint,
        )
        self._get_organization(cmd.organization_id).require_not_deactivated(
            "activate single sign-on"
        )
        return self._sso_command(
            cmd, lambda c: c.activate(cmd.generation, cmd.authorization_endpoint)
        )

    @command(s.AbandonSSOConfiguration)
    def abandon_sso_configuration(
        self, *, organization_id: UUID, generation: int, reason: Reason
    ) -> SSOConnectionView:
        """Stop trying configuration ``generation``; the one in force stays."""
        cmd = validate(
            s.AbandonSSOConfiguration,
            organization_id=organization_id,
            generation=generation,
            reason=reason,
        )
        return self._sso_command(cmd, lambda c: c.abandon(cmd.generation, cmd.reason))

    @command(s.DeactivateSSO)
    def deactivate_sso(self, *, organization_id: UUID, reason: Reason) -> SSOConnectionView:
        """End single sign-on for the organization (none in force: a no-op)."""
        cmd = validate(s.DeactivateSSO, organization_id=organization_id, reason=reason)
        return self._sso_command(cmd, lambda c: c.deactivate(cmd.reason))

    def get_sso_connection(self, organization_id: UUID) -> SSOConnectionView:
        connection = self._load(SSOConnection.create_id(organization_id), SSOConnection)
        if connection is None:
            raise SSOConnectionNotFound(organization_id)
        return SSOConnectionView.of(connection)

    def get_sso_client_credentials(
        self, organization_id: UUID, generation: int | None = None
    ) -> SSOClientCredentials:
        """The client of configuration ``generation`` (None: the one in force) with its
        SEALED secret: what the worker needs to exchange a sign-in's code, and only it."""
        connection = self._load(SSOConnection.create_id(organization_id), SSOConnection)
        if connection is None:
            raise SSOConnectionNotFound(organization_id)
        wanted = connection.active_generation if generation is None else generation
        if wanted is None:
            raise SSOConfigurationNotPending(0)
        return connection.credentials(wanted)

    def _sso_command(
        self, cmd: s.SSOCommand, command: Callable[[SSOConnection], None]
    ) -> SSOConnectionView:
        def decide(connection: SSOConnection | None) -> SSOConnection:
            if connection is None:
                raise SSOConnectionNotFound(cmd.organization_id)
            command(connection)
            return connection

        connection_id = SSOConnection.create_id(cmd.organization_id)
        connection, position = self._execute(connection_id, SSOConnection, decide)
        return SSOConnectionView.of(connection, position)

    # --- e-mail domains ---------------------------------------------------------------

    @command(s.RequestEmailDomainVerification)
    def request_email_domain_verification(
        self, *, organization_id: UUID, domain: Hostname
    ) -> EmailDomainView:
        """The challenge the organization publishes to prove it owns ``domain`` (asked
        again: the same one). A domain another organization owns: ``EmailDomainTaken``."""
        cmd = validate(
            s.RequestEmailDomainVerification, organization_id=organization_id, domain=domain
        )
        self._get_organization(cmd.organization_id).require_not_deactivated(
            "verify an e-mail domain"
        )
        owner = self.get_email_domain_owner(cmd.domain)
        if owner is not None and owner != cmd.organization_id:
            raise EmailDomainTaken(cmd.domain)

        def decide(verification: EmailDomainVerification | None) -> EmailDomainVerification | None:
            if verification is not None:
                return None  # asked already: the first challenge stands
            return EmailDomainVerification(
                organization_id=cmd.organization_id,
                domain=cmd.domain,
                challenge=secrets.token_urlsafe(CHALLENGE_BYTES),
            )

        verification_id = EmailDomainVerification.create_id(cmd.organization_id, cmd.domain)
        verification, position = self._execute(
            verification_id, EmailDomainVerification, decide, assume_new=True
        )
        return EmailDomainView.of(verification, position)

    @command(s.VerifyEmailDomain)
    def verify_email_domain(self, *, organization_id: UUID, domain: Hostname) -> EmailDomainView:
        """The domain's challenge was found in its DNS: the domain is the organization's
        (claimed in the same save). Owned by another organization: ``EmailDomainTaken``,
        nothing stored. Verified already: a no-op."""
        cmd = validate(s.VerifyEmailDomain, organization_id=organization_id, domain=domain)
        self._get_organization(cmd.organization_id).require_not_deactivated(
            "verify an e-mail domain"
        )

        def decide() -> tuple[EmailDomainVerification, list[Aggregate]]:
            verification = self._email_domain(cmd.organization_id, cmd.domain)
            claim = self._load(email_domain_claim_id(cmd.domain), EmailDomainClaim)
            if claim is not None and claim.organization_id != cmd.organization_id:
                raise EmailDomainTaken(cmd.domain)
            claims: list[Aggregate] = []
            if claim is None:
                claims.append(
                    EmailDomainClaim(domain=cmd.domain, organization_id=cmd.organization_id)
                )
            verification.verify()
            return verification, [verification, *claims]

        verification, position = self._save_together(f"e-mail domain {cmd.domain}", decide)
        return EmailDomainView.of(verification, position)

    def get_email_domain(self, organization_id: UUID, domain: str) -> EmailDomainView:
        """The organization's request for ``domain`` (lower-case); ``EmailDomainNotFound``."""
        return EmailDomainView.of(self._email_domain(organization_id, domain))

    def get_email_domain_owner(self, domain: str) -> UUID | None:
        """The organization that proved it owns ``domain`` (lower-case), if any."""
        claim = self._load(email_domain_claim_id(domain), EmailDomainClaim)
        return None if claim is None else claim.organization_id

    def _email_domain(self, organization_id: UUID, domain: str) -> EmailDomainVerification:
        verification = self._load(
            email_domain_verification_id(organization_id, domain), EmailDomainVerification
        )
        if verification is None:
            raise EmailDomainNotFound(domain)
        return verification
