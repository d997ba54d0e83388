"""The outcome metrics move with what really happened, on the real dev server.

A real worker with the metrics interceptor, every workflow task replayed from its
history (``max_cached_workflows=0``: each activation rebuilds the run from scratch), so a
counter that moved on replay would show twice here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from uuid import UUID

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer
from tests.worker.flows import FaultyApp, Flows, bootstrap_input, sqlite_app, wait_for_step
from tests.worker.histories import recorded_histories

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.errors import OrganizationInactive
from a4c_worker.client import (
    accept_invitation,
    invitation_handle,
    revoke_invitation,
    start_bootstrap,
)
from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.metrics import WorkerMetrics, bootstrap_outcome
from a4c_worker.providers.errors import PermanentProviderError
from a4c_worker.worker import WORKFLOWS, create_worker, workflow_runner
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path, FaultyApp)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


@asynccontextmanager
async def measured_worker(flows: Flows) -> AsyncIterator[WorkerMetrics]:
    metrics = WorkerMetrics()
    async with create_worker(
        flows.client,
        flows.task_queue,
        flows.activities().all(),
        interceptors=[metrics.interceptor()],
        max_cached_workflows=0,
    ):
        yield metrics


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series never touched (how Prometheus reads it too)."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def bootstraps(metrics: WorkerMetrics) -> dict[str, float]:
    return {
        outcome: value(metrics, "a4c_worker_bootstraps_total", outcome=outcome)
        for outcome in ("completed", "compensated", "failed", "cancelled")
    }


def ended(metrics: WorkerMetrics, outcome: str) -> dict[str, float]:
    return {"completed": 0.0, "compensated": 0.0, "failed": 0.0, "cancelled": 0.0, outcome: 1.0}


def token_of(flows: Flows, inv_id: UUID) -> str:
    inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    text = flows.invitation_mails(inv.email)[-1].text
    return text.split("?token=", 1)[1].split()[0]


async def test_a_completed_bootstrap_counts_once_with_its_duration_dns_and_invitations(
    flows: Flows,
) -> None:
    async with measured_worker(flows) as metrics:
        handle = await start_bootstrap(flows.client, bootstrap_input("m-done"), flows.task_queue)
        await handle.result()
        # A query on the closed run replays its whole history on this (cacheless) worker.
        await handle.query(OrganizationBootstrapWorkflow.progress)

    assert bootstraps(metrics) == ended(metrics, "completed")
    assert (
        value(
            metrics,
            "a4c_worker_workflows_started_total",
            workflow_type="OrganizationBootstrapWorkflow",
        )
        == 1
    )
    duration = "a4c_worker_bootstrap_duration_seconds"
    assert value(metrics, duration + "_count", outcome="completed") == 1
    # At least the propagation wait (0.2 s of workflow time).
    assert value(metrics, duration + "_sum", outcome="completed") >= 0.2
    assert value(metrics, "a4c_worker_dns_verification_seconds_count") == 1
    assert value(metrics, "a4c_worker_invitations_issued_total") == 2
    assert value(metrics, "a4c_worker_invitations_sent_total", kind="invitation") == 2
    assert value(metrics, "a4c_worker_bootstrap_compensations_total") == 0


async def test_a_failed_dns_step_is_compensated_and_counted_as_a_dns_configuration_failure(
    flows: Flows,
) -> None:
    slug = "m-dns"
    flows.dns.fail_for(f"{slug}.orgs.a4c.test", PermanentProviderError("REFUSED"), times=1)
    async with measured_worker(flows) as metrics:
        handle = await start_bootstrap(flows.client, bootstrap_input(slug), flows.task_queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await handle.query(OrganizationBootstrapWorkflow.progress)

    assert bootstraps(metrics) == ended(metrics, "compensated")
    assert value(metrics, "a4c_worker_bootstrap_duration_seconds_count", outcome="compensated") == 1
    assert (
        value(
            metrics,
            "a4c_worker_dns_configuration_failures_total",
            step="configure_dns",
            error_type="PermanentProviderError",
        )
        == 1
    )
    undos = "a4c_worker_bootstrap_compensations_total"
    assert value(metrics, undos, undo="deactivate", outcome="done") == 1
    assert value(metrics, undos, undo="remove_dns", outcome="nothing_to_do") == 1
    assert value(metrics, "a4c_worker_invitations_issued_total") == 0


async def test_a_failure_whose_undo_fails_counts_as_failed(flows: Flows) -> None:
    slug = "m-undo-fails"
    assert isinstance(flows.app, FaultyApp)
    flows.app.fail("activate", OrganizationInactive("injected"))
    # Every attempt of the deactivation fails (the test policy allows three).
    flows.app.fail("deactivate", OrganizationInactive("injected"), times=3)
    async with measured_worker(flows) as metrics:
        handle = await start_bootstrap(
            flows.client, bootstrap_input(slug, domain=False), flows.task_queue
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    assert bootstraps(metrics) == ended(metrics, "failed")
    undos = "a4c_worker_bootstrap_compensations_total"
    assert value(metrics, undos, undo="deactivate", outcome="failed") == 1
    assert value(metrics, undos, undo="revoke_invitation", outcome="done") == 2
    # Revoked by the undo: those invitations are closed.
    assert value(metrics, "a4c_worker_invitations_closed_total", outcome="revoked") == 2
    # Not a DNS step.
    assert metrics.registry.get_sample_value("a4c_worker_dns_configuration_failures_total") is None


async def test_cancelled_bootstraps_count_as_cancelled_however_they_were_cancelled(
    flows: Flows,
) -> None:
    async with measured_worker(flows) as metrics:
        by_signal = await start_bootstrap(
            flows.client, bootstrap_input("m-cancel-signal", propagation_wait_seconds=600),
            flows.task_queue,
        )  # fmt: skip
        by_temporal = await start_bootstrap(
            flows.client, bootstrap_input("m-cancel-temporal", propagation_wait_seconds=600),
            flows.task_queue,
        )  # fmt: skip
        await wait_for_step(by_signal, "propagation_wait")
        await wait_for_step(by_temporal, "propagation_wait")
        await by_signal.signal(OrganizationBootstrapWorkflow.cancel, "changed their mind")
        await by_temporal.cancel()
        for handle in (by_signal, by_temporal):
            with pytest.raises(WorkflowFailureError):
                await handle.result()

    assert bootstraps(metrics) == {
        "completed": 0.0, "compensated": 0.0, "failed": 0.0, "cancelled": 2.0
    }  # fmt: skip
    assert value(metrics, "a4c_worker_bootstrap_duration_seconds_count", outcome="cancelled") == 2
    undos = "a4c_worker_bootstrap_compensations_total"
    assert value(metrics, undos, undo="deactivate", outcome="done") == 2
    assert value(metrics, undos, undo="remove_dns", outcome="done") == 2
    # Cancelled during the propagation wait: not a DNS failure.
    assert metrics.registry.get_sample_value("a4c_worker_dns_configuration_failures_total") is None


async def test_invitations_sent_accepted_revoked_and_expired_are_counted(flows: Flows) -> None:
    async with measured_worker(flows) as metrics:
        first = await start_bootstrap(
            flows.client, bootstrap_input("m-inv", invitees=2, domain=False), flows.task_queue
        )
        accepted_id, revoked_id = (await first.result()).invitation_ids
        await accept_invitation(flows.client, accepted_id, token_of(flows, accepted_id), "user-1")
        await revoke_invitation(flows.client, revoked_id, "no longer with us")
        # Replayed closes (the runs' results, read on a cacheless worker) add nothing.
        for inv_id in (accepted_id, revoked_id):
            await invitation_handle(flows.client, inv_id).result()

        short = bootstrap_input(
            "m-inv-expiry", invitees=1, domain=False,
            invitation_ttl_seconds=3, reminder_before_seconds=2,
        )  # fmt: skip
        second = await start_bootstrap(flows.client, short, flows.task_queue)
        (expiring_id,) = (await second.result()).invitation_ids
        final = await invitation_handle(flows.client, expiring_id).result()
    assert final.state == "expired"

    closed = "a4c_worker_invitations_closed_total"
    assert value(metrics, closed, outcome="accepted") == 1
    assert value(metrics, closed, outcome="revoked") == 1
    assert value(metrics, closed, outcome="expired") == 1
    assert value(metrics, "a4c_worker_invitations_issued_total") == 3
    assert value(metrics, "a4c_worker_invitations_sent_total", kind="invitation") == 3
    assert value(metrics, "a4c_worker_invitations_sent_total", kind="reminder") == 1
    assert (
        value(metrics, "a4c_worker_workflows_started_total", workflow_type="InvitationWorkflow")
        == 3
    )


def test_the_outcome_of_a_run_that_raised_something_undescribed_is_failed() -> None:
    assert bootstrap_outcome(None, None) == "completed"
    assert bootstrap_outcome(RuntimeError("a bug"), None) == "failed"


async def test_replaying_the_recorded_histories_counts_nothing() -> None:
    """Every recorded run of every release, replayed to its end with the interceptor:
    completed, compensated and cancelled bootstraps, accepted and revoked invitations."""
    metrics = WorkerMetrics()
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=DATA_CONVERTER,
        workflow_runner=workflow_runner(),
        interceptors=[metrics.interceptor()],
    )
    histories = recorded_histories()
    assert any(name.startswith("bootstrap_cancelled") for name in histories), histories
    for name, path in sorted(histories.items()):
        history = WorkflowHistory.from_json(name, path.read_text())
        result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
        assert result.replay_failure is None

    a4c_samples = [
        (sample.name, sample.labels, sample.value)
        for family in metrics.registry.collect()
        if family.name.startswith("a4c_worker_")
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]
    assert [s for s in a4c_samples if s[2] != 0 and s[0] != "a4c_worker_activities_running"] == []
