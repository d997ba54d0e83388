"""Every worker heartbeats its activities: a slow attempt of a live worker is never cut
short by its heartbeat timeout, and a cancellation the workflow asks for, which the
heartbeats now deliver, still lets the attempt finish (its write is then undone).

A killed worker's attempts, retried once the beats stop: tests/worker/test_dead_worker.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from tests.worker.flows import FaultyApp, Flows, bootstrap_input, sqlite_app

from a4c_domain import ALL_ORGANIZATIONS, invitation_id, organization_id
from a4c_worker.client import start_bootstrap
from a4c_worker.worker import create_worker
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import StepPolicy

# One-second heartbeat timeout, a write held three times as long.
SHORT_HEARTBEAT = StepPolicy(
    timeout_seconds=30, heartbeat_timeout_seconds=1, retry_initial_interval_seconds=0.1
)
HELD = 3.0


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path, FaultyApp)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


def faulty(flows: Flows) -> FaultyApp:
    assert isinstance(flows.app, FaultyApp)
    return flows.app


def events(history: WorkflowHistory, kind: EventType.ValueType) -> list[HistoryEvent]:
    return [e for e in history.events if e.event_type == kind]


def first_attempts_only(history: WorkflowHistory) -> bool:
    """No activity timed out or was retried (a retry is recorded only as the attempt
    number on the started event of the attempt that ended it)."""
    started = events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    return not events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT) and all(
        e.activity_task_started_event_attributes.attempt == 1 for e in started
    )


async def test_a_slow_attempt_of_a_live_worker_outlasts_its_heartbeat_timeout(
    flows: Flows,
) -> None:
    faulty(flows).hang("register_organization", before_commit=True)
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client,
            bootstrap_input("beats-slow", invitees=0, activities=SHORT_HEARTBEAT),
            flows.task_queue,
        )
        assert await asyncio.to_thread(faulty(flows).hanging.wait, 30)
        await asyncio.sleep(HELD)
        faulty(flows).release()
        await handle.result()
    history = await handle.fetch_history()
    assert first_attempts_only(history)


async def test_a_worker_shutting_down_keeps_beating_for_the_attempt_it_lets_finish(
    flows: Flows,
) -> None:
    """SIGTERM's graceful shutdown: polling stops, the running attempt finishes within
    the grace period, however much longer than its heartbeat timeout that takes."""
    faulty(flows).hang("register_organization", before_commit=True)
    worker = create_worker(
        flows.client,
        flows.task_queue,
        flows.activities().all(),
        graceful_shutdown_timeout=timedelta(seconds=30),
    )
    running = asyncio.create_task(worker.run())
    handle = await start_bootstrap(
        flows.client,
        bootstrap_input("beats-shutdown", invitees=0, activities=SHORT_HEARTBEAT),
        flows.task_queue,
    )
    assert await asyncio.to_thread(faulty(flows).hanging.wait, 30)
    stopping = asyncio.create_task(worker.shutdown())
    await asyncio.sleep(HELD)
    faulty(flows).release()
    await stopping
    await running
    history = await handle.fetch_history()
    completed = events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    assert len(completed) == 1, "the attempt in flight reported its result"
    assert first_attempts_only(history)
    async with flows.worker():
        await handle.result()


async def test_a_cancel_the_workflow_asks_for_lets_the_attempt_finish(flows: Flows) -> None:
    """The heartbeats deliver the cancellation; the invite in flight commits anyway and
    reports its result, and only then is it revoked (compensation waited for it)."""
    slug = "beats-cancel"
    faulty(flows).hang("invite", before_commit=True)
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input(slug, activities=SHORT_HEARTBEAT), flows.task_queue
        )
        assert await asyncio.to_thread(faulty(flows).hanging.wait, 30)
        cancelling = asyncio.create_task(
            handle.execute_update(OrganizationBootstrapWorkflow.request_cancel, "stop")
        )
        await asyncio.sleep(HELD)  # several heartbeats: the cancellation has reached it
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
        assert (progress.state, progress.compensations) == ("running", [])
        faulty(flows).release()
        final = await cancelling
    assert final.failed_step == "issue_invitations"
    history = await handle.fetch_history()
    assert events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
    assert not events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED)
    org_id = organization_id(slug)
    for i in range(2):
        inv_id = invitation_id(org_id, f"person{i}@{slug}.example.com", 1)
        assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "revoked"
