"""a4c_domain — event-sourced organization onboarding.

The public API: ``OnboardingApplication`` (one method per command), the aggregates
(organizations, invitations, webhook endpoints, single sign-on connections, e-mail
domains) and their past-tense event classes, the
command models, the frozen views queries return, the public form of the events
(:mod:`a4c_domain.public_events`), the cause context, and the exception tree in
:mod:`a4c_domain.errors`.

Importing this package does no I/O and reads no configuration.
"""

from a4c_domain import errors
from a4c_domain.application import OnboardingApplication
from a4c_domain.cause import Cause, caused_by, current_cause
from a4c_domain.claims import DomainClaim
from a4c_domain.email_domains import EmailDomainClaim, EmailDomainVerification
from a4c_domain.ids import (
    domain_claim_id,
    email_domain_claim_id,
    email_domain_verification_id,
    event_id,
    invitation_id,
    organization_id,
    sso_connection_id,
    webhook_endpoint_id,
)
from a4c_domain.invitation import Invitation
from a4c_domain.organization import Organization
from a4c_domain.public_events import PUBLIC_EVENTS_VERSION, PublicEvent, public_form
from a4c_domain.scope import ALL_ORGANIZATIONS, OrganizationScope
from a4c_domain.sso_connection import SSOConnection
from a4c_domain.tokens import hash_token
from a4c_domain.views import (
    EmailDomainView,
    InvitationView,
    OrganizationView,
    SSOConnectionView,
    WebhookEndpointView,
)
from a4c_domain.webhook_endpoint import WebhookEndpoint

__all__ = [
    "ALL_ORGANIZATIONS",
    "PUBLIC_EVENTS_VERSION",
    "Cause",
    "DomainClaim",
    "EmailDomainClaim",
    "EmailDomainVerification",
    "EmailDomainView",
    "Invitation",
    "InvitationView",
    "OnboardingApplication",
    "Organization",
    "OrganizationScope",
    "OrganizationView",
    "PublicEvent",
    "SSOConnection",
    "SSOConnectionView",
    "WebhookEndpoint",
    "WebhookEndpointView",
    "caused_by",
    "current_cause",
    "domain_claim_id",
    "email_domain_claim_id",
    "email_domain_verification_id",
    "errors",
    "event_id",
    "hash_token",
    "invitation_id",
    "organization_id",
    "public_form",
    "sso_connection_id",
    "webhook_endpoint_id",
]
