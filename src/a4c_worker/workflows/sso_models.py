"""What ``SSOConfigurationWorkflow`` takes, answers and reports (recorded in history:
never a client secret in clear; the sealed one only in the input)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from a4c_domain.commands import Email, Hostname, Identifier, Reason
from a4c_domain.fields import IssuerURL, SealedSecret
from a4c_worker.contracts import Model
from a4c_worker.workflows.models import DAY, MAX_ADMINS, StepPolicy

SSO_CONFIGURATION_WORKFLOW_PREFIX = "sso-configuration-"
SSO_DEACTIVATION_WORKFLOW_PREFIX = "sso-deactivation-"
EMAIL_DOMAIN_WORKFLOW_PREFIX = "email-domain-"
EMAIL_DOMAIN_REQUEST_WORKFLOW_PREFIX = "email-domain-request-"
# The run's failure when the challenge never showed within its checks.
EMAIL_DOMAIN_NOT_VERIFIED = "EmailDomainNotVerified"
DEFAULT_CHECK_ATTEMPTS = 20  # from a minute, doubling up to five: about an hour and a half
DEFAULT_FIRST_CHECK_INTERVAL_SECONDS = 60.0
DEFAULT_TEST_TIMEOUT_SECONDS = float(DAY)
# The error types a run ends with (besides a provider's refusal, typed by its check:
# IssuerMismatch, NoUsableKey...).
SSO_TEST_TIMED_OUT = "SSOTestTimedOut"
SSO_TEST_FAILED = "SSOTestFailed"
SSO_TEST_REFUSED = "SSOTestRefused"  # an update that does not fit the run (validator)

SSOConfigurationState = Literal[
    "checking_provider",
    "configuring",
    "waiting_for_test",
    "activating",
    "active",
    "refused",
    "abandoned",
]


def sso_configuration_workflow_id(organization_id: UUID) -> str:
    """One configuration at a time per organization: a second start is refused while
    one runs."""
    return f"{SSO_CONFIGURATION_WORKFLOW_PREFIX}{organization_id}"


def sso_deactivation_workflow_id(organization_id: UUID) -> str:
    return f"{SSO_DEACTIVATION_WORKFLOW_PREFIX}{organization_id}"


def email_domain_workflow_id(organization_id: UUID, domain: str) -> str:
    """One check at a time per organization and domain: a second start joins it."""
    return f"{EMAIL_DOMAIN_WORKFLOW_PREFIX}{organization_id}-{domain}"


def email_domain_request_workflow_id(organization_id: UUID, domain: str) -> str:
    """A request without a check (``check`` false): apart from the checks, so a check
    asked for never joins a run that does not check."""
    return f"{EMAIL_DOMAIN_REQUEST_WORKFLOW_PREFIX}{organization_id}-{domain}"


class EmailDomainVerificationInput(Model):
    """An organization's e-mail domain to verify once its challenge shows in its DNS:
    ``check_attempts`` checks, the first after ``first_check_interval_seconds``, each
    wait doubling (up to five minutes)."""

    organization_id: UUID
    domain: Hostname
    check: bool = True  # False: only the request (the challenge), no check
    check_attempts: int = Field(default=DEFAULT_CHECK_ATTEMPTS, ge=1, le=100)
    first_check_interval_seconds: float = Field(
        default=DEFAULT_FIRST_CHECK_INTERVAL_SECONDS, gt=0, le=3600
    )
    activities: StepPolicy = Field(default_factory=StepPolicy)


class SSOConfigurationInput(Model):
    """An organization's provider to check, try, test and activate.

    ``test_timeout_seconds``: how long an admin has to complete the test sign-in; then
    the configuration is abandoned and the one in force (if any) stays.
    """

    organization_id: UUID
    issuer: IssuerURL
    client_id: Identifier
    client_secret: SealedSecret  # sealed (a4c_webhooks.sealing)
    test_timeout_seconds: float = Field(default=DEFAULT_TEST_TIMEOUT_SECONDS, gt=0, le=7 * DAY)
    # Who is told once it is active (the API reads the organization's owners and admins
    # from the members read model, as for the offboarding).
    admins: list[Email] = Field(default_factory=list, max_length=MAX_ADMINS)
    activities: StepPolicy = Field(default_factory=StepPolicy)


class SSODeactivationInput(Model):
    organization_id: UUID
    reason: Reason
    activities: StepPolicy = Field(default_factory=StepPolicy)


class SSOTestSignIn(Model):
    """An admin's test sign-in through configuration ``generation``, as the a4c page
    received it: the one-time authorization ``code`` and the PKCE ``code_verifier``
    (single-use, spent by the exchange the workflow runs; encrypted in history by the
    payload codec), and the ``redirect_uri`` and ``nonce`` the sign-in started with."""

    generation: int = Field(ge=1)
    code: str = Field(min_length=1, max_length=2048, repr=False)
    code_verifier: str = Field(min_length=43, max_length=128, repr=False)
    redirect_uri: str = Field(min_length=1, max_length=2048)
    nonce: str = Field(min_length=1, max_length=255)


class SSOTestPassed(Model):
    """What the exchange of a test sign-in verified: the configuration it used, the
    provider's subject and the domain of the verified address (never the address)."""

    generation: int = Field(ge=1)
    subject: Identifier
    email_domain: Hostname


class SSOTestFailed(Model):
    generation: int = Field(ge=1)
    reason: Reason


class SSOConfigurationProgress(Model):
    """Where a run is; the provider's endpoints once checked (what the test page needs to
    send the admin to the provider). ``error``: why it was refused or abandoned."""

    organization_id: UUID
    state: SSOConfigurationState
    issuer: str
    client_id: str
    generation: int | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    signing_algorithms: list[str] = Field(default_factory=list)
    error: str | None = None
