"""Timeouts and retry policies the workflows give their activities.

Kept apart from the workflow logic so both workflows retry the same way and a test can
shorten every wait through the input's ``StepPolicy`` instead of patching code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

from a4c_worker.workflows.models import StepPolicy

BACKOFF = 2.0
MAX_INTERVAL = timedelta(minutes=5)


def step_options(policy: StepPolicy) -> dict[str, Any]:
    """``execute_activity`` keyword arguments for an ordinary step.

    A cancelled step waits for its activity to finish: a write still in flight when
    compensation starts could land after its undo (an invitation created after its
    revoke). The heartbeats that carry the cancellation to the activity do not pass it
    on (:mod:`a4c_worker.heartbeats`), so "finish" means the attempt completes or times
    out.
    """
    return {
        **_timeouts(policy),
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=policy.retry_initial_interval_seconds),
            backoff_coefficient=BACKOFF,
            maximum_interval=MAX_INTERVAL,
            maximum_attempts=policy.max_attempts,
        ),
    }


def dns_verify_options(
    policy: StepPolicy, attempts: int, initial_interval_seconds: float
) -> dict[str, Any]:
    """Verification retries on "not visible yet": ``attempts`` tries, doubling the wait.

    Read-only, so a cancellation does not wait for an attempt in flight.
    """
    return {
        **_timeouts(policy),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=initial_interval_seconds),
            backoff_coefficient=BACKOFF,
            maximum_interval=MAX_INTERVAL,
            maximum_attempts=attempts,
        ),
    }


def until_answered(policy: StepPolicy) -> dict[str, Any]:
    """Options for a step that retries until the store answers (a refusal still ends it)."""
    return {
        **_timeouts(policy),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=policy.retry_initial_interval_seconds),
            maximum_interval=MAX_INTERVAL,
        ),
    }


def _timeouts(policy: StepPolicy) -> dict[str, timedelta]:
    """Every activity's: an attempt's whole time, and how long its heartbeats may stop
    (a dead worker's attempt is retried elsewhere after that). Not compared on replay:
    histories recorded without a heartbeat timeout replay unchanged."""
    return {
        "start_to_close_timeout": timedelta(seconds=policy.timeout_seconds),
        "heartbeat_timeout": timedelta(seconds=policy.heartbeat_timeout_seconds),
    }
