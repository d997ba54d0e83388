"""What ``SSOConfigurationWorkflow`` takes, answers and reports (recorded in history:
never a client secret in clear; the sealed one only in the input)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from a4c_domain.commands import Hostname, Identifier, Reason
from a4c_domain.fields import IssuerURL, SealedSecret
from a4c_worker.contracts import Model
from a4c_worker.workflows.models import DAY, StepPolicy

SSO_CONFIGURATION_WORKFLOW_PREFIX = "sso-configuration-"
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
    activities: StepPolicy = Field(default_factory=StepPolicy)


class SSOTestPassed(Model):
    """What the a4c page that ran the test sign-in verified: the configuration it used,
    the provider's subject and the domain of the verified address (never the address)."""

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
