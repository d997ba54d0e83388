"""Every activity heartbeats while it runs, so a dead worker's attempts are retried soon.

Temporal learns that a worker died only from timeouts. Without heartbeats an attempt of
a SIGKILLed worker is retried once its start-to-close timeout (30 s) has passed; with a
heartbeat timeout (``StepPolicy.heartbeat_timeout_seconds``, 5 s) it is retried once
the heartbeats stop. A heartbeat says the process is alive, not that the work moves:
an activity waiting on a slow SMTP server or a database failing over keeps beating and
is not cut short (its start-to-close timeout still bounds it).

Heartbeats also carry cancellation to the activity, which before them never learned of
it. A step the workflow cancels must still run to its end (the workflow waits for it,
see ``policies.step_options``: a write still in flight could otherwise land after its
undo), so a cancellation the workflow asked for is not passed on to the attempt. One the
server or the worker decides (the attempt timed out or is gone, the worker shuts down)
is.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# Heartbeats sent within one heartbeat timeout: several, so one late beat on a busy
# machine does not time a live attempt out.
BEATS_PER_TIMEOUT = 5
# The worker's cap on how long the SDK may hold a heartbeat back (its default throttle
# is 80 % of the timeout, which would leave a single beat per timeout).
MAX_HEARTBEAT_THROTTLE = timedelta(seconds=0.5)


class ActivityHeartbeats(Interceptor):
    """Installed on every worker by :func:`a4c_worker.worker.create_worker`."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if not timeout:  # scheduled without one (before heartbeats): nothing watches
            return await self.next.execute_activity(input)
        attempt = asyncio.ensure_future(self.next.execute_activity(input))
        beating = asyncio.create_task(_beat(timeout.total_seconds() / BEATS_PER_TIMEOUT))
        try:
            return await _finish(attempt)
        finally:
            beating.cancel()


async def _beat(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        activity.heartbeat()


async def _finish(attempt: asyncio.Future[Any]) -> Any:
    """The attempt's outcome; a cancellation only the workflow asked for waits for it."""
    while True:
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            if attempt.done() or not _asked_by_workflow():
                attempt.cancel()
                await asyncio.wait([attempt])  # unwound before the SDK reports it
                raise
            activity.logger.info("cancellation requested: letting the attempt finish")


def _asked_by_workflow() -> bool:
    details = activity.cancellation_details()
    return (
        details is not None
        and details.cancel_requested
        and not (details.not_found or details.timed_out or details.worker_shutdown)
        and not activity.is_worker_shutdown()
    )
