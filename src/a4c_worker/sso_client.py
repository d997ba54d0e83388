"""Client-side helpers of single sign-on: start an organization's configuration, read
where it is, and report its test sign-in; start the check of an e-mail domain's
challenge (what the API's routes and test page call).

One configuration runs at a time per organization (its workflow id follows from the
organization): a start while one runs is refused (:class:`SSOConfigurationRunning`:
cancel it, or wait for it to end); once it ended, a new one may start. A test report
the run does not await (another generation, already reported, or the run is past
waiting) is refused before it reaches history (:class:`SSOTestRefused`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from temporalio.client import (
    Client,
    RPCError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCStatusCode

from a4c_worker.config import DEFAULT_TASK_QUEUE
from a4c_worker.contracts import EmailDomainOutcome, SSOConnectionOutcome
from a4c_worker.search_attributes import organization_search_attributes
from a4c_worker.workflows.email_domain import EmailDomainVerificationWorkflow
from a4c_worker.workflows.sso_configuration import SSOConfigurationWorkflow
from a4c_worker.workflows.sso_deactivation import SSODeactivationWorkflow
from a4c_worker.workflows.sso_models import (
    SSO_TEST_REFUSED,
    EmailDomainVerificationInput,
    SSOConfigurationInput,
    SSOConfigurationProgress,
    SSODeactivationInput,
    SSOTestFailed,
    SSOTestSignIn,
    email_domain_request_workflow_id,
    email_domain_workflow_id,
    sso_configuration_workflow_id,
    sso_deactivation_workflow_id,
)

SSOHandle = WorkflowHandle[Any, SSOConfigurationProgress]


class SSOConfigurationRunning(Exception):
    """A configuration of this organization is already running."""

    def __init__(self, organization_id: UUID) -> None:
        self.organization_id = organization_id
        super().__init__(
            f"a single sign-on configuration of organization {organization_id} is running: "
            "cancel it or wait for it to end"
        )


class SSOTestRefused(Exception):
    """The configuration does not await this test report (the message says why)."""


async def start_sso_configuration(
    client: Client,
    spec: SSOConfigurationInput,
    *,
    slug: str | None = None,
    task_queue: str = DEFAULT_TASK_QUEUE,
) -> SSOHandle:
    """Start checking, trying and (once tested) activating ``spec``'s provider."""
    try:
        return await client.start_workflow(
            SSOConfigurationWorkflow.run,
            spec,
            id=sso_configuration_workflow_id(spec.organization_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=organization_search_attributes(spec.organization_id, slug),
        )
    except WorkflowAlreadyStartedError:
        raise SSOConfigurationRunning(spec.organization_id) from None


def sso_configuration_handle(client: Client, organization_id: UUID) -> SSOHandle:
    """The organization's latest configuration run."""
    return client.get_workflow_handle_for(
        SSOConfigurationWorkflow.run, sso_configuration_workflow_id(organization_id)
    )


async def sso_configuration_progress(
    client: Client, organization_id: UUID
) -> SSOConfigurationProgress | None:
    """Where the organization's latest configuration is; None if it never had one."""
    try:
        return await sso_configuration_handle(client, organization_id).query(
            SSOConfigurationWorkflow.progress
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    except WorkflowQueryFailedError:
        return None  # it failed before its first step set the progress


class SSOSignInFailed(Exception):
    """The test sign-in proved nothing (``type``: ``CodeRejected``, ``InvalidIDToken``,
    ``EmailNotVerified``, or why the provider could not be asked); the run still waits."""

    def __init__(self, type: str | None, message: str) -> None:
        self.type = type
        super().__init__(message)


async def report_sso_test(
    client: Client, organization_id: UUID, result: SSOTestSignIn | SSOTestFailed
) -> SSOConfigurationProgress:
    """Give the running configuration its test sign-in (exchanged and verified by the
    worker) or the admin's word that it failed; returns once the configuration is in
    force or abandoned. :class:`SSOSignInFailed` when the sign-in proved nothing."""
    handle = sso_configuration_handle(client, organization_id)
    try:
        if isinstance(result, SSOTestSignIn):
            return await handle.execute_update(SSOConfigurationWorkflow.test_sign_in, result)
        return await handle.execute_update(SSOConfigurationWorkflow.test_failed, result)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == SSO_TEST_REFUSED:
            raise SSOTestRefused(cause.message) from None
        if isinstance(cause, ApplicationError):
            raise SSOSignInFailed(cause.type, cause.message) from None
        if isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError):
            raise SSOSignInFailed(cause.cause.type, cause.cause.message) from None
        raise
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise SSOTestRefused("no single sign-on configuration is running") from None
        raise


async def deactivate_sso(
    client: Client,
    spec: SSODeactivationInput,
    *,
    slug: str | None = None,
    task_queue: str = DEFAULT_TASK_QUEUE,
) -> SSOConnectionOutcome:
    """End the organization's single sign-on (joins a deactivation already running)."""
    handle = await client.start_workflow(
        SSODeactivationWorkflow.run,
        spec,
        id=sso_deactivation_workflow_id(spec.organization_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=organization_search_attributes(spec.organization_id, slug),
    )
    return await handle.result()


async def request_email_domain(
    client: Client,
    organization_id: UUID,
    domain: str,
    *,
    slug: str | None = None,
    task_queue: str = DEFAULT_TASK_QUEUE,
) -> EmailDomainOutcome:
    """Give the organization its challenge for ``domain`` (no check): returns once it is
    recorded. Refusals come as ``WorkflowFailureError`` (``EmailDomainTaken``...)."""
    spec = EmailDomainVerificationInput(organization_id=organization_id, domain=domain, check=False)
    handle = await client.start_workflow(
        EmailDomainVerificationWorkflow.run,
        spec,
        id=email_domain_request_workflow_id(organization_id, domain),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=organization_search_attributes(organization_id, slug),
    )
    return await handle.result()


async def start_email_domain_verification(
    client: Client,
    spec: EmailDomainVerificationInput,
    *,
    slug: str | None = None,
    task_queue: str = DEFAULT_TASK_QUEUE,
) -> WorkflowHandle[Any, EmailDomainOutcome]:
    """Start checking the domain's DNS for its challenge; a start while a check of the
    same domain runs joins it, one after it ended checks again."""
    return await client.start_workflow(
        EmailDomainVerificationWorkflow.run,
        spec,
        id=email_domain_workflow_id(spec.organization_id, spec.domain),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=organization_search_attributes(spec.organization_id, slug),
    )
