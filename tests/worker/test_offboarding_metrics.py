"""Offboardings counted by how they ended, on the real dev server: completed, cancelled
in the grace period, refused before anything changed, failed with something left; each
once, also on a worker that replays every workflow task (``max_cached_workflows=0``)
and when a query replays the closed run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from tests.support import wait_for_async
from tests.worker.flows import FaultyApp, Flows, sqlite_app
from tests.worker.test_offboarding_workflow import offboarding, onboarded
from tests.worker.test_outcome_metrics import measured_worker, value

from a4c_domain.errors import OrganizationConflict
from a4c_worker.client import OffboardingHandle, start_offboarding
from a4c_worker.metrics import OFFBOARDING_OUTCOMES, WorkerMetrics, offboarding_outcome
from a4c_worker.workflows.offboarding import OrganizationOffboardingWorkflow


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path, FaultyApp)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


def offboardings(metrics: WorkerMetrics) -> dict[str, float]:
    return {
        outcome: value(metrics, "a4c_worker_offboardings_total", outcome=outcome)
        for outcome in OFFBOARDING_OUTCOMES
    }


async def ended(flows: Flows, slug: str, **extra: object) -> OffboardingHandle:
    """Offboard ``slug``; wait for the run's end, however it ended, then replay it with a
    query."""
    handle = await start_offboarding(flows.client, offboarding(slug, **extra), flows.task_queue)
    await run_out(handle)
    return handle


async def run_out(handle: OffboardingHandle) -> None:
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    await handle.query(OrganizationOffboardingWorkflow.progress)


async def test_each_way_an_offboarding_ends_is_counted_once(flows: Flows) -> None:
    assert isinstance(flows.app, FaultyApp)
    async with measured_worker(flows) as metrics:
        for slug in ("m-leaver", "m-stayer", "m-half"):
            await onboarded(flows, slug, invitees=1)
        await ended(flows, "m-leaver")
        assert offboardings(metrics) == {
            "completed": 1, "cancelled": 0, "failed": 0, "refused": 0
        }  # fmt: skip

        waiting = await start_offboarding(
            flows.client, offboarding("m-stayer", grace_period_seconds=600), flows.task_queue
        )

        async def in_grace() -> bool:
            progress = await waiting.query(OrganizationOffboardingWorkflow.progress)
            return progress.current_step == "grace_period"

        await wait_for_async(in_grace, what="the grace period")
        await waiting.execute_update(OrganizationOffboardingWorkflow.request_cancel, "stays")
        await run_out(waiting)

        await ended(flows, "m-nobody")

        flows.app.fail("remove_dns", OrganizationConflict("injected: the provider said no", {}))
        await ended(flows, "m-half")

    assert offboardings(metrics) == {"completed": 1, "cancelled": 1, "failed": 1, "refused": 1}
    started = value(
        metrics,
        "a4c_worker_workflows_started_total",
        workflow_type="OrganizationOffboardingWorkflow",
    )
    assert started == 4
    # The bootstraps' own counter is not moved by an offboarding.
    assert value(metrics, "a4c_worker_bootstraps_total", outcome="completed") == 3


def test_the_outcome_of_a_run_that_raised_something_undescribed_is_failed() -> None:
    assert offboarding_outcome(None) == "completed"
    assert offboarding_outcome(RuntimeError("a bug")) == "failed"
