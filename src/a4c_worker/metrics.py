"""Prometheus metrics of the worker, collected by a Temporal interceptor.

Activities: started, failed (by activity type and error type) and their duration.
Workflows: executions this worker began running for the first time — replays after a
cache eviction or a restart are not counted again, so the figure means "starts".
Accepts refused for a wrong token, by refusal (``InvalidToken``, or ``TooManyAttempts``
once an invitation is throttled; see :mod:`a4c_worker.attempts`).

Each :class:`WorkerMetrics` has its own ``CollectorRegistry`` (served by ``/metrics``),
so tests and several workers in one process never share counters.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.activities_started = Counter(
            "a4c_worker_activities_started",
            "Activity attempts started, by activity type.",
            ["activity_type"],
            registry=self.registry,
        )
        self.activities_failed = Counter(
            "a4c_worker_activities_failed",
            "Activity attempts that raised, by activity type and error type.",
            ["activity_type", "error_type"],
            registry=self.registry,
        )
        self.activity_seconds = Histogram(
            "a4c_worker_activity_seconds",
            "Duration of activity attempts, by activity type.",
            ["activity_type"],
            registry=self.registry,
        )
        self.activities_running = Gauge(
            "a4c_worker_activities_running",
            "Activity attempts running now.",
            registry=self.registry,
        )
        self.workflows_started = Counter(
            "a4c_worker_workflows_started",
            "Workflow executions this worker ran for the first time, by workflow type.",
            ["workflow_type"],
            registry=self.registry,
        )

        self.accept_proofs_refused = Counter(
            "a4c_worker_accept_proofs_refused",
            "Invitation accepts refused for a wrong token, by refusal type.",
            ["refusal"],
            registry=self.registry,
        )

    def count_refused_accept(self, refusal: str) -> None:
        self.accept_proofs_refused.labels(refusal).inc()

    def interceptor(self) -> Interceptor:
        return MetricsInterceptor(self)


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
                if not workflow.unsafe.is_replaying():
                    metrics.workflows_started.labels(workflow.info().workflow_type).inc()
                return await super().execute_workflow(input)

        return _WorkflowMetrics


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
            return await super().execute_activity(input)
        except BaseException as exc:
            error_type = getattr(exc, "type", None) or type(exc).__name__
            self.metrics.activities_failed.labels(activity_type, error_type).inc()
            raise
        finally:
            self.metrics.activities_running.dec()
            self.metrics.activity_seconds.labels(activity_type).observe(time.perf_counter() - began)
