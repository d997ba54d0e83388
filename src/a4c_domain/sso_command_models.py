"""The command models of single sign-on and e-mail domains (a4c_domain.sso_commands).

Each names the organization it acts for (``organization_id``): the connection and the
verifications are that organization's own, found by ids derived from it, so no command
can reach another organization's. A configuration step names its ``generation``.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from a4c_domain.commands import Command, Reason
from a4c_domain.fields import Hostname, Identifier, IssuerURL, SealedSecret, WebhookURL

__all__ = [
    "AbandonSSOConfiguration",
    "ActivateSSO",
    "ConfigureSSO",
    "DeactivateSSO",
    "EmailDomainCommand",
    "RecordSSOTest",
    "RequestEmailDomainVerification",
    "SSOCommand",
    "VerifyEmailDomain",
]


class SSOCommand(Command):
    organization_id: UUID


class ConfigureSSO(SSOCommand):
    issuer: IssuerURL
    client_id: Identifier
    client_secret: SealedSecret  # sealed under the platform's keys (a4c_webhooks.sealing)


class RecordSSOTest(SSOCommand):
    generation: int = Field(ge=1)
    subject: Identifier  # the tester's subject at the provider
    email_domain: Hostname  # the domain of the tester's verified address, never the address


class ActivateSSO(SSOCommand):
    generation: int = Field(ge=1)
    # The provider's, from its checked discovery document (an http(s) URL's syntax).
    authorization_endpoint: WebhookURL | None = None


class AbandonSSOConfiguration(SSOCommand):
    generation: int = Field(ge=1)
    reason: Reason


class DeactivateSSO(SSOCommand):
    reason: Reason


class EmailDomainCommand(Command):
    organization_id: UUID
    domain: Hostname


class RequestEmailDomainVerification(EmailDomainCommand):
    pass


class VerifyEmailDomain(EmailDomainCommand):
    pass
