"""Building the Temporal worker: every workflow, every activity, one task queue.

The client passed in must come from :func:`a4c_worker.client.connect`: the worker
decodes and encodes with the client's data converter, which seals every payload with
the payload keys (``TEMPORAL_PAYLOAD_KEYS``, :mod:`a4c_worker.codec`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from a4c_worker.attempts import AcceptGuard
from a4c_worker.config import (
    DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    DEFAULT_STICKY_QUEUE_TIMEOUT_SECONDS,
)
from a4c_worker.heartbeats import MAX_HEARTBEAT_THROTTLE, ActivityHeartbeats
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.email_domain import EmailDomainVerificationWorkflow
from a4c_worker.workflows.invitation import InvitationWorkflow
from a4c_worker.workflows.offboarding import OrganizationOffboardingWorkflow
from a4c_worker.workflows.sso_configuration import SSOConfigurationWorkflow
from a4c_worker.workflows.sso_deactivation import SSODeactivationWorkflow
from a4c_worker.workflows.webhook_endpoint import WebhookEndpointWorkflow

WORKFLOWS: list[type] = [
    OrganizationBootstrapWorkflow,
    OrganizationOffboardingWorkflow,
    InvitationWorkflow,
    WebhookEndpointWorkflow,
    SSOConfigurationWorkflow,
    SSODeactivationWorkflow,
    EmailDomainVerificationWorkflow,
]
# Validation libraries the workflow models use, loaded lazily on first use: share the
# worker's copy instead of re-importing them inside each sandboxed run.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "email_validator",
    "idna",
    "a4c_domain",
    # The tracing interceptor's workflow side keeps its context across the sandbox.
    "opentelemetry",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def create_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    *,
    max_concurrent_activities: int = DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    sticky_queue_timeout_seconds: float = DEFAULT_STICKY_QUEUE_TIMEOUT_SECONDS,
    accept_guard: AcceptGuard | None = None,
    **worker_options: Any,
) -> Worker:
    """A worker for every workflow; ``activities`` is ``OnboardingActivities.all()``.

    Every worker limits wrong invitation tokens (``accept_guard``, default limits if
    None) and heartbeats its running activities (:mod:`a4c_worker.heartbeats`: the
    workflows give every activity a heartbeat timeout, so a worker that did not beat
    would see its longer attempts retried); interceptors passed in run inside both.
    A workflow task waits ``sticky_queue_timeout_seconds`` for this worker if it has the
    workflow cached, then goes to any worker: how long a dead worker holds its workflows.

    Extra keyword arguments go to :class:`temporalio.worker.Worker` (e.g. identity,
    graceful_shutdown_timeout).
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=list(activities),
        max_concurrent_activities=max_concurrent_activities,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=sticky_queue_timeout_seconds),
        max_heartbeat_throttle_interval=MAX_HEARTBEAT_THROTTLE,
        workflow_runner=worker_options.pop("workflow_runner", workflow_runner()),
        interceptors=[
            ActivityHeartbeats(),
            accept_guard or AcceptGuard(),
            *worker_options.pop("interceptors", []),
        ],
        **worker_options,
    )
