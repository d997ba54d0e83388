"""``a4c-worker run``: the long-lived worker process, from start-up to a clean exit.

Order of events:

1. health endpoints first, so a liveness probe sees the process while it connects;
2. the event store and providers (from the validated settings), then Temporal — retried
   with back-off, so a worker started before the frontend waits rather than crash-looping;
3. the worker polls; ``/ready`` turns true once it runs and the frontend answers;
4. on SIGTERM/SIGINT ``/ready`` turns false at once, polling stops, running activities get
   ``SHUTDOWN_GRACE_SECONDS`` to finish (then they are cancelled and Temporal retries
   them elsewhere — activities are idempotent), and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from a4c_domain import OnboardingApplication
from a4c_worker.attempts import AcceptGuard, AttemptLimit
from a4c_worker.client import connect
from a4c_worker.config import WorkerSettings
from a4c_worker.connection import connect_failure
from a4c_worker.health import HealthServer, HealthState, heartbeat, watch_readiness
from a4c_worker.metrics import WorkerMetrics
from a4c_worker.tracing import tracing_interceptor
from a4c_worker.wiring import build_activities, build_application
from a4c_worker.worker import create_worker

logger = logging.getLogger(__name__)

CONNECT_BACKOFF_MAX = 30.0
READINESS_INTERVAL = 2.0


async def run_worker(settings: WorkerSettings, stop: asyncio.Event | None = None) -> int:
    """Run until ``stop`` is set (SIGTERM/SIGINT set it); 0 on a clean shutdown."""
    if settings.workflow_mode == "production":
        settings.warn_if_payloads_in_clear(logger)
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    state = HealthState()
    metrics = WorkerMetrics()
    health = HealthServer(state, metrics.registry)
    health.start(settings.health_host, settings.health_port)
    beating = asyncio.create_task(heartbeat(state))
    app: OnboardingApplication | None = None
    try:
        app = await asyncio.to_thread(build_application, settings)
        activities = build_activities(settings, app)
        client = await _connect_until_stopped(settings, stop)
        if client is None:
            return 0
        worker = create_worker(
            client,
            settings.temporal_task_queue,
            activities.all(),
            max_concurrent_activities=settings.max_concurrent_activities,
            sticky_queue_timeout_seconds=settings.sticky_queue_timeout_seconds,
            graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
            accept_guard=AcceptGuard(
                AttemptLimit(
                    max_wrong=settings.a4c_accept_max_wrong,
                    window_seconds=settings.a4c_accept_window_seconds,
                ),
                metrics.count_refused_accept,
            ),
            interceptors=[
                interceptor
                for interceptor in (
                    metrics.interceptor(),
                    tracing_interceptor(settings.otel_traces_exporter),
                )
                if interceptor is not None
            ],
        )
        return await _serve(worker, client, state, stop, settings)
    finally:
        beating.cancel()
        health.stop()
        if app is not None:
            app.close()


async def _serve(
    worker: Worker,
    client: Client,
    state: HealthState,
    stop: asyncio.Event,
    settings: WorkerSettings,
) -> int:
    async def probe() -> tuple[bool, str]:
        if not worker.is_running:
            return False, "worker_not_running"
        if not await client.service_client.check_health(timeout=timedelta(seconds=2)):
            return False, "temporal_unhealthy"
        return True, ""

    running = asyncio.create_task(worker.run())
    watching = asyncio.create_task(watch_readiness(state, probe, READINESS_INTERVAL))
    stopping = asyncio.create_task(stop.wait())
    logger.info(
        "worker polling %s on %s (mode %s, dns %s, email %s)",
        settings.temporal_task_queue,
        settings.temporal_connection().describe(),
        settings.workflow_mode,
        settings.resolved_dns_provider,
        settings.resolved_email_provider,
    )
    if settings.provisioning_failed_mail_to is None:
        logger.info("PROVISIONING_FAILED_MAIL_TO is not set: failed onboardings are not mailed")
    async with _cancelling(watching, stopping):
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        state.begin_shutdown()
        if running.done():
            # The worker stopped on its own: a fatal error (e.g. the namespace is gone).
            logger.error("worker stopped unexpectedly", exc_info=running.exception())
            return 1
        logger.info(
            "shutting down: polling stopped, %.0fs for running activities",
            settings.shutdown_grace_seconds,
        )
        await worker.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    logger.info("worker stopped cleanly")
    return 0


async def _connect_until_stopped(settings: WorkerSettings, stop: asyncio.Event) -> Client | None:
    """Connect, retrying with back-off; ``None`` if asked to stop first."""
    delay = 1.0
    runtime = _runtime(settings)  # once: it owns the metrics listener
    temporal = settings.temporal_connection()
    while not stop.is_set():
        try:
            return await connect(temporal, runtime=runtime)
        except RuntimeError as exc:  # the SDK's "failed client connect"
            logger.warning("%s; retrying in %.0fs", connect_failure(temporal, exc), delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, CONNECT_BACKOFF_MAX)
    return None


def _runtime(settings: WorkerSettings) -> Runtime | None:
    """With ``TEMPORAL_METRICS_PORT``: the SDK's own metrics (poll latency, slots...) there."""
    if settings.temporal_metrics_port is None:
        return None
    address = f"{settings.health_host}:{settings.temporal_metrics_port}"
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address, durations_as_seconds=True, unit_suffix=True
            )
        )
    )


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)


@contextlib.asynccontextmanager
async def _cancelling(*tasks: asyncio.Task[object]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
