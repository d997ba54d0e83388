"""The names Temporal stores never move, whatever module the code lives in.

Workflow, activity, query, signal and update names are written to workflow history and
used by clients of running executions; a rename (of a method, since activities and
handlers are named after theirs) would strand them. Add names; never change these.
"""

from __future__ import annotations

import inspect

from temporalio import activity, workflow

from a4c_worker.activities import OnboardingActivities
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.email_domain import EmailDomainVerificationWorkflow
from a4c_worker.workflows.invitation import InvitationWorkflow
from a4c_worker.workflows.offboarding import OrganizationOffboardingWorkflow
from a4c_worker.workflows.sso_configuration import SSOConfigurationWorkflow
from a4c_worker.workflows.sso_deactivation import SSODeactivationWorkflow
from a4c_worker.workflows.webhook_endpoint import WebhookEndpointWorkflow

ACTIVITIES = {
    "accept_invitation",
    "accept_proof_check",
    "change_webhook_endpoint",
    "activate_organization",
    "configure_dns",
    "deactivate_organization",
    "end_invitation",
    "expire_invitation",
    "issue_invitation",
    "look_up_invitation",
    "offboard_organization",
    "offboarding_plan",
    "record_dns_verified",
    "record_email_failure",
    "register_organization",
    "reissue_token",
    "remove_dns",
    "revoke_invitation",
    "send_invitation_email",
    "send_organization_mail",
    "send_webhook_disabled_mail",
    "verify_dns",
    # 0.5.0: single sign-on and e-mail domains.
    "validate_sso_provider",
    "configure_sso",
    "record_sso_test",
    "activate_sso",
    "abandon_sso_configuration",
    "deactivate_sso",
    "exchange_sso_code",
    "request_email_domain",
    "verify_email_domain",
}
WORKFLOWS = {
    OrganizationBootstrapWorkflow: (
        "OrganizationBootstrapWorkflow",
        {"progress"},
        {"cancel"},
        {"request_cancel"},
    ),
    InvitationWorkflow: (
        "InvitationWorkflow",
        {"status"},
        {"invitation_ended"},
        {"accept", "resend", "revoke"},
    ),
    WebhookEndpointWorkflow: ("WebhookEndpointWorkflow", set(), set(), set()),
    OrganizationOffboardingWorkflow: (
        "OrganizationOffboardingWorkflow",
        {"progress"},
        {"cancel"},
        {"request_cancel"},
    ),
    SSOConfigurationWorkflow: (
        "SSOConfigurationWorkflow",
        {"progress"},
        set(),
        {"test_sign_in", "test_failed"},
    ),
    EmailDomainVerificationWorkflow: ("EmailDomainVerificationWorkflow", set(), set(), set()),
    SSODeactivationWorkflow: ("SSODeactivationWorkflow", set(), set(), set()),
}


def test_activity_names() -> None:
    defined = {
        definition.name
        for _, method in inspect.getmembers(OnboardingActivities)
        if (definition := activity._Definition.from_callable(method)) is not None
    }
    assert defined >= ACTIVITIES, ACTIVITIES - defined


def test_workflow_and_handler_names() -> None:
    for cls, (name, queries, signals, updates) in WORKFLOWS.items():
        definition = workflow._Definition.must_from_class(cls)
        assert definition.name == name
        assert set(definition.queries) >= queries
        assert set(definition.signals) >= signals
        assert set(definition.updates) >= updates
