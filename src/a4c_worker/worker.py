"""Building the Temporal worker: both workflows, every activity, one task queue.

The client passed in must come from :func:`a4c_worker.client.connect`: the worker
decodes and encodes with the client's data converter, which seals every payload with
the payload keys (``TEMPORAL_PAYLOAD_KEYS``, :mod:`a4c_worker.codec`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from a4c_worker.attempts import AcceptGuard
from a4c_worker.config import DEFAULT_MAX_CONCURRENT_ACTIVITIES
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.invitation import InvitationWorkflow

WORKFLOWS: list[type] = [OrganizationBootstrapWorkflow, InvitationWorkflow]
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
    accept_guard: AcceptGuard | None = None,
    **worker_options: Any,
) -> Worker:
    """A worker for the onboarding workflows; ``activities`` is ``OnboardingActivities.all()``.

    Every worker limits wrong invitation tokens (``accept_guard``, default limits if
    None); interceptors passed in run inside it.

    Extra keyword arguments go to :class:`temporalio.worker.Worker` (e.g. identity,
    graceful_shutdown_timeout).
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=list(activities),
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=worker_options.pop("workflow_runner", workflow_runner()),
        interceptors=[accept_guard or AcceptGuard(), *worker_options.pop("interceptors", [])],
        **worker_options,
    )
