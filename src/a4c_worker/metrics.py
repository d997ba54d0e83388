"""Prometheus metrics of the worker, collected by a Temporal interceptor.

Activities, workflows, bootstrap outcomes and undos, offboarding outcomes, DNS,
invitations and refused accepts, and the process. Nothing is counted in workflow code
or on a replay; invitations are counted from what the activities report they wrote.
Each :class:`WorkerMetrics` has its own registry. What each metric answers, and why
nothing counts twice: docs/design/worker-metrics.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from a4c_service.metrics import ProcessMetrics
from a4c_worker.activities.organization_mail import OrganizationMailOutcome
from a4c_worker.contracts import CompensationOutcome, InvitationOutcome, MailOutcome, SendMailInput
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.bootstrap_progress import (
    CANCELLED,
    CONFIGURE_DNS,
    FAILED,
    RECORD_DNS_VERIFIED,
    VERIFY_DNS,
)
from a4c_worker.workflows.models import BootstrapProgress
from a4c_worker.workflows.offboarding import (
    OFFBOARDING_CANCELLED,
    OFFBOARDING_REFUSED,
    OrganizationOffboardingWorkflow,
)
from a4c_worker.workflows.saga import failure_type

BootstrapOutcome = Literal["completed", "compensated", "failed", "cancelled"]
BOOTSTRAP_OUTCOMES: tuple[BootstrapOutcome, ...] = (
    "completed",
    "compensated",
    "failed",
    "cancelled",
)
OffboardingOutcome = Literal["completed", "cancelled", "failed", "refused"]
OFFBOARDING_OUTCOMES: tuple[OffboardingOutcome, ...] = (
    "completed",
    "cancelled",
    "failed",
    "refused",
)
DNS_STEPS = (CONFIGURE_DNS, VERIFY_DNS, RECORD_DNS_VERIFIED)
# A bootstrap runs for minutes (DNS propagation, verification back-off), sometimes hours.
BOOTSTRAP_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600)
DNS_VERIFICATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)


class WorkerMetrics(ProcessMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.activities_started = self.counter(
            "a4c_worker_activities_started",
            "Activity attempts started, by activity type.",
            ["activity_type"],
        )
        self.activities_failed = self.counter(
            "a4c_worker_activities_failed",
            "Activity attempts that raised, by activity type and error type.",
            ["activity_type", "error_type"],
        )
        self.activity_seconds = self.histogram(
            "a4c_worker_activity_seconds",
            "Duration of activity attempts, by activity type.",
            ["activity_type"],
        )
        self.activities_running = self.gauge(
            "a4c_worker_activities_running",
            "Activity attempts running now.",
        )
        self.workflows_started = self.counter(
            "a4c_worker_workflows_started",
            "Workflow executions this worker ran for the first time, by workflow type.",
            ["workflow_type"],
        )
        self.bootstraps = self.counter(
            "a4c_worker_bootstraps",
            "Organization bootstraps ended, by outcome: completed; compensated (failed at a "
            "step, and every undo succeeded); failed (any other failure: an undo failed, or "
            "the input was refused before any step); cancelled.",
            ["outcome"],
        )
        self.bootstrap_seconds = self.histogram(
            "a4c_worker_bootstrap_duration_seconds",
            "Time from a bootstrap's start to its end (workflow time), by outcome.",
            ["outcome"],
            buckets=BOOTSTRAP_BUCKETS,
        )
        self.bootstrap_compensations = self.counter(
            "a4c_worker_bootstrap_compensations",
            "Undo actions run by failed or cancelled bootstraps, by undo and outcome "
            "(done, nothing_to_do, failed).",
            ["undo", "outcome"],
        )
        self.offboardings = self.counter(
            "a4c_worker_offboardings",
            "Organization offboardings ended, by outcome: completed; cancelled (inside the "
            "grace period: nothing changed); refused (no such organization, or it had "
            "ended: nothing changed); failed (a step failed and something is left: start "
            "the offboarding again).",
            ["outcome"],
        )
        self.dns_configuration_failures = self.counter(
            "a4c_worker_dns_configuration_failures",
            "Bootstraps that failed at a DNS step (configure_dns, verify_dns, "
            "record_dns_verified), by step and error type.",
            ["step", "error_type"],
        )
        self.dns_verification_seconds = self.histogram(
            "a4c_worker_dns_verification_seconds",
            "Time from the first DNS verification attempt to the record found visible.",
            buckets=DNS_VERIFICATION_BUCKETS,
        )
        self.invitations_issued = self.counter(
            "a4c_worker_invitations_issued",
            "Invitations issued (stored).",
        )
        self.invitations_sent = self.counter(
            "a4c_worker_invitations_sent",
            "Invitation mails handed to the mail provider, by kind (invitation, reminder).",
            ["kind"],
        )
        self.organization_mails = self.counter(
            "a4c_worker_organization_mails",
            "Mails about an organization, by kind (welcome, provisioning_failed, "
            "offboarded) and result (sent; already_sent: a retry found it recorded; "
            "refused for good; no_address configured).",
            ["kind", "result"],
        )
        self.invitations_closed = self.counter(
            "a4c_worker_invitations_closed",
            "Invitations closed, by outcome (accepted, revoked, expired).",
            ["outcome"],
        )
        self.accept_proofs_refused = self.counter(
            "a4c_worker_accept_proofs_refused",
            "Invitation accepts refused for a wrong token, by refusal type.",
            ["refusal"],
        )

    def count_refused_accept(self, refusal: str) -> None:
        self.accept_proofs_refused.labels(refusal).inc()

    def interceptor(self) -> Interceptor:
        return MetricsInterceptor(self)

    # --- what the interceptors report --------------------------------------------------

    def count_bootstrap(
        self, error: BaseException | None, progress: BootstrapProgress | None, seconds: float
    ) -> None:
        """A bootstrap ended: returned (``error`` None) or raised ``error``; ``progress`` is
        its final progress (what its undos did, where it failed)."""
        outcome = bootstrap_outcome(error, progress)
        self.bootstraps.labels(outcome).inc()
        self.bootstrap_seconds.labels(outcome).observe(max(seconds, 0.0))
        if progress is None:
            return
        for record in progress.compensations:
            # "revoke_invitation:<address>" names the invitee: the undo's kind only.
            undo = record.step.split(":", 1)[0]
            self.bootstrap_compensations.labels(undo, record.outcome).inc()
        if outcome in ("compensated", "failed") and progress.failed_step in DNS_STEPS:
            cause = error.__cause__ if error is not None else None
            error_type = (failure_type(cause) or type(cause).__name__) if cause else "unknown"
            self.dns_configuration_failures.labels(progress.failed_step, error_type).inc()

    def count_offboarding(self, error: BaseException | None) -> None:
        """An offboarding ended: returned (``error`` None) or raised ``error``."""
        self.offboardings.labels(offboarding_outcome(error)).inc()

    def count_activity_result(self, activity_type: str, args: Sequence[Any], result: Any) -> None:
        """What a returning activity did, for the activities that answer an operator's
        question (the rest are counted as attempts only)."""
        if activity_type == "verify_dns":
            first_try = activity.info().scheduled_time
            waited = (datetime.now(UTC) - first_try).total_seconds()
            self.dns_verification_seconds.observe(max(waited, 0.0))
        elif isinstance(result, InvitationOutcome) and result.written:
            if activity_type == "issue_invitation":
                self.invitations_issued.inc()
            elif activity_type == "accept_invitation":
                self.invitations_closed.labels("accepted").inc()
            elif activity_type == "expire_invitation" and result.status == "expired":
                self.invitations_closed.labels("expired").inc()
        elif isinstance(result, OrganizationMailOutcome):
            self.organization_mails.labels(result.kind, result.result).inc()
        elif isinstance(result, MailOutcome) and result.sent and args:
            request = args[0]
            kind = request.kind if isinstance(request, SendMailInput) else "invitation"
            self.invitations_sent.labels(kind).inc()
        elif (
            activity_type == "revoke_invitation"
            and isinstance(result, CompensationOutcome)
            and result.outcome == "done"
        ):
            self.invitations_closed.labels("revoked").inc()


def bootstrap_outcome(
    error: BaseException | None, progress: BootstrapProgress | None
) -> BootstrapOutcome:
    """How a bootstrap ended, from what its run raised (None: it completed) and its final
    progress (None if it has none to tell)."""
    if error is None:
        return "completed"
    if isinstance(error, asyncio.CancelledError) or is_cancelled_exception(error):
        return "cancelled"  # a Temporal cancellation
    if isinstance(error, ApplicationError) and error.type == CANCELLED:
        return "cancelled"  # the cancel signal or update
    if isinstance(error, ApplicationError) and error.type == FAILED and progress is not None:
        undone = all(c.outcome != "failed" for c in progress.compensations)
        return "compensated" if undone else "failed"
    # Failed before its saga began (invalid input) or in a way it does not describe.
    return "failed"


def offboarding_outcome(error: BaseException | None) -> OffboardingOutcome:
    """How an offboarding ended, from what its run raised (None: it completed)."""
    if error is None:
        return "completed"
    if isinstance(error, asyncio.CancelledError) or is_cancelled_exception(error):
        return "cancelled"  # a Temporal cancellation
    if isinstance(error, ApplicationError) and error.type == OFFBOARDING_CANCELLED:
        return "cancelled"  # the cancel signal or update, inside the grace period
    if isinstance(error, ApplicationError) and error.type == OFFBOARDING_REFUSED:
        return "refused"
    # OffboardingFailed, an invalid input, or a failure it does not describe.
    return "failed"


class MetricsInterceptor(Interceptor):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetrics(next, self.metrics)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        metrics = self.metrics

        class _WorkflowMetrics(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                info = workflow.info()
                if not workflow.unsafe.is_replaying():
                    metrics.workflows_started.labels(info.workflow_type).inc()
                if _is(input.type, OrganizationBootstrapWorkflow):
                    count = _count_bootstrap
                elif _is(input.type, OrganizationOffboardingWorkflow):
                    count = _count_offboarding
                else:
                    return await super().execute_workflow(input)
                try:
                    result = await super().execute_workflow(input)
                except BaseException as exc:
                    count(metrics, info, exc)
                    raise
                count(metrics, info, None)
                return result

        return _WorkflowMetrics


def _is(cls: type, workflow_class: type) -> bool:
    # By name: the sandbox runs its own import of the workflow's module, another class object.
    return (cls.__module__, cls.__qualname__) == (
        workflow_class.__module__,
        workflow_class.__qualname__,
    )


def _count_bootstrap(
    metrics: WorkerMetrics, info: workflow.Info, error: BaseException | None
) -> None:
    """Count the end of a bootstrap run, unless this is a replay (see the module doc)."""
    if workflow.unsafe.is_replaying():
        return
    try:
        seconds = (workflow.now() - info.start_time).total_seconds()
        # The run's own account (a pure query method), whichever way it ended: a Temporal
        # cancellation raises no error that carries it. By attribute: the sandbox's copy
        # of the workflow class is not the one imported here (the models are passed
        # through, so the progress is of the class imported here).
        found = getattr(workflow.instance(), "progress", lambda: None)()
        progress = found if isinstance(found, BootstrapProgress) else None
        metrics.count_bootstrap(error, progress, seconds)
    except Exception:
        # A metric must never fail the workflow task (it would be retried forever).
        workflow.logger.exception("counting the end of a bootstrap failed")


def _count_offboarding(
    metrics: WorkerMetrics, info: workflow.Info, error: BaseException | None
) -> None:
    """Count the end of an offboarding run, unless this is a replay."""
    if workflow.unsafe.is_replaying():
        return
    try:
        metrics.count_offboarding(error)
    except Exception:
        # A metric must never fail the workflow task (it would be retried forever).
        workflow.logger.exception("counting the end of an offboarding failed")


class _ActivityMetrics(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: WorkerMetrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        activity_type = activity.info().activity_type
        self.metrics.activities_started.labels(activity_type).inc()
        self.metrics.activities_running.inc()
        began = time.perf_counter()
        try:
            result = await super().execute_activity(input)
        except BaseException as exc:
            error_type = getattr(exc, "type", None) or type(exc).__name__
            self.metrics.activities_failed.labels(activity_type, error_type).inc()
            raise
        finally:
            self.metrics.activities_running.dec()
            self.metrics.activity_seconds.labels(activity_type).observe(time.perf_counter() - began)
        try:
            self.metrics.count_activity_result(activity_type, input.args, result)
        except Exception:
            # The activity did its work: a metric must not fail it (it would be retried).
            activity.logger.exception("counting the result of %s failed", activity_type)
        return result
