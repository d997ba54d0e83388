"""Temporal activities: each issues one domain command and/or makes one provider call.

All I/O of the onboarding workflows happens here, and every activity is safe to retry
after it acted. Errors leave as ``ApplicationError`` typed by the a4c error's class
name, retryable only if the error is. Tokens and provider texts never leave unredacted.
An activity's name is its method's name, recorded in every history: never rename one.
Why, and how the groups fit together: docs/design/activities.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from a4c_domain.errors import DomainOutsideZone
from a4c_worker.activities.base import (
    Links,
    current_activity_cause,
    temporal_errors,
    to_application_error,
)
from a4c_worker.activities.dns import DNS_NOT_VISIBLE, UNCLAIMED, DNSActivities
from a4c_worker.activities.email_domains import EMAIL_DOMAIN_NOT_PUBLISHED, EmailDomainActivities
from a4c_worker.activities.invitations import InvitationActivities
from a4c_worker.activities.mail import MailActivities
from a4c_worker.activities.organization import OrganizationActivities
from a4c_worker.activities.organization_mail import OrganizationMailActivities
from a4c_worker.activities.sso import SSOActivities
from a4c_worker.activities.webhooks import WebhookActivities

DOMAIN_OUTSIDE_ZONE = DomainOutsideZone.__name__


class OnboardingActivities(
    OrganizationActivities,
    DNSActivities,
    InvitationActivities,
    MailActivities,
    OrganizationMailActivities,
    WebhookActivities,
    EmailDomainActivities,
    SSOActivities,
):
    """The activities, bound to their dependencies. Register :meth:`all` with a worker.

    One object, so the workflows name every activity as ``OnboardingActivities.<method>``
    whichever group defines it."""

    def all(self) -> list[Callable[..., Any]]:
        """Every activity method, bound, for ``Worker(activities=...)``."""
        return [
            self.register_organization,
            self.configure_dns,
            self.verify_dns,
            self.record_dns_verified,
            self.activate_organization,
            self.issue_invitation,
            self.send_invitation_email,
            self.record_email_failure,
            self.reissue_token,
            self.accept_invitation,
            self.accept_proof_check,
            self.look_up_invitation,
            self.expire_invitation,
            self.revoke_invitation,
            self.remove_dns,
            self.deactivate_organization,
            self.send_organization_mail,
            self.offboarding_plan,
            self.end_invitation,
            self.offboard_organization,
            self.request_email_domain,
            self.verify_email_domain,
            *self.webhook_activities(),
            *self.sso_activities(),
        ]


__all__ = [
    "DNS_NOT_VISIBLE",
    "DOMAIN_OUTSIDE_ZONE",
    "EMAIL_DOMAIN_NOT_PUBLISHED",
    "UNCLAIMED",
    "Links",
    "OnboardingActivities",
    "current_activity_cause",
    "temporal_errors",
    "to_application_error",
]
