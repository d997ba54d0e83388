"""The bootstrap's 0.4.0 change behind ``workflow.patched``, and the steps that retire it.

The change: the invitation mails go out after activation (the point of no return), not
before it, so no invitee is mailed a link that a rollback then revokes. An execution
that mailed first replays that way; one recorded by 0.4.0 replays the new way
(tests/worker/test_replay_histories.py replays both with today's code). Here: what each
history shows, and which histories the next stages (tests/worker/patch_stages.py: patch
deprecated, then removed) replay: the checks docs/workflows.md
runs before each deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker
from temporalio.workflow import NondeterminismError
from tests.worker.flows import FaultyApp, Flows, bootstrap_input, sqlite_app, wait_for_step
from tests.worker.histories import recorded_histories
from tests.worker.patch_stages import PatchDeprecated, PatchRemoved

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.errors import DNSNotVerified
from a4c_worker.client import start_bootstrap
from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.worker import workflow_runner
from a4c_worker.workflows.bootstrap import (
    ACTIVATE_BEFORE_MAILS_PATCH,
    OrganizationBootstrapWorkflow,
)
from a4c_worker.workflows.invitation import InvitationWorkflow

RECORDED = recorded_histories()
BEFORE = "v0.3.0/bootstrap_happy"  # recorded before the change
AFTER = "v0.4.0/bootstrap_happy"  # recorded by the patched code
STAGES: dict[str, type] = {
    "patched": OrganizationBootstrapWorkflow,
    "deprecated": PatchDeprecated,
    "removed": PatchRemoved,
}
ACTIVATE, MAIL = "activate_organization", "send_invitation_email"


def recorded(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, RECORDED[name].read_text())


def activation_and_mails(history: WorkflowHistory) -> list[str]:
    """The activation and mail activities, in the order the bootstrap scheduled them."""
    scheduled = (
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    )
    return [name for name in scheduled if name in (ACTIVATE, MAIL)]


def patch_markers(history: WorkflowHistory) -> list[dict[str, Any]]:
    """The patch markers' data (``{"id": ..., "deprecated": ...}``)."""
    return [
        DATA_CONVERTER.payload_converter.from_payloads([payload], [dict])[0]
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        for name, payloads in event.marker_recorded_event_attributes.details.items()
        if name == "patch-data"
        for payload in payloads.payloads
    ]


def test_before_the_change_the_bootstrap_mailed_then_activated() -> None:
    before = recorded(BEFORE)
    assert activation_and_mails(before) == [MAIL, MAIL, ACTIVATE]
    assert patch_markers(before) == []


def test_the_patched_bootstrap_activates_then_mails_and_says_so() -> None:
    after = recorded(AFTER)
    assert activation_and_mails(after) == [ACTIVATE, MAIL, MAIL]
    assert patch_markers(after) == [{"id": ACTIVATE_BEFORE_MAILS_PATCH, "deprecated": False}]


def replayer(stage: str) -> Replayer:
    workflows = [STAGES[stage], InvitationWorkflow]
    runner = workflow_runner() if stage == "patched" else UnsandboxedWorkflowRunner()
    return Replayer(workflows=workflows, data_converter=DATA_CONVERTER, workflow_runner=runner)


async def replays(stage: str, history: WorkflowHistory) -> bool:
    """Whether the stage's code replays the history; False only for a nondeterminism."""
    result = await replayer(stage).replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is None:
        return True
    assert isinstance(result.replay_failure, NondeterminismError), result.replay_failure
    return False


# The procedure as a table: which release's histories each stage replays.
@pytest.mark.parametrize(
    ("stage", "history", "expected"),
    [
        # Stage 1 (this release) runs executions started before it and after it alike.
        ("patched", BEFORE, True),
        ("patched", AFTER, True),
        # Stage 2 only once no execution started before the patch is open (nor will be
        # queried or reset): it fails on their histories.
        ("deprecated", BEFORE, False),
        ("deprecated", AFTER, True),
        # Stage 3 only once the executions of stage 1 have closed too (below).
        ("removed", BEFORE, False),
        ("removed", AFTER, False),
    ],
)
async def test_which_histories_each_stage_replays(stage: str, history: str, expected: bool) -> None:
    assert await replays(stage, recorded(history)) is expected


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Flows:
    return Flows(app=sqlite_app(tmp_path, FaultyApp), client=temporal_client, task_queue=task_queue)


async def test_an_execution_of_the_deprecated_stage_replays_on_every_stage(flows: Flows) -> None:
    """Runs stage 2 for real: its history replays on stage 3 (removing the patch is then
    safe) and on stage 1 (rolling back from 2 to 1 is safe too)."""
    async with Worker(
        flows.client,
        task_queue=flows.task_queue,
        workflows=[PatchDeprecated, InvitationWorkflow],
        activities=flows.activities().all(),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await start_bootstrap(
            flows.client, bootstrap_input("patch-stage-2", domain=False), flows.task_queue
        )
        await handle.result()
    flows.app.close()
    history = await handle.fetch_history()
    assert activation_and_mails(history) == [ACTIVATE, MAIL, MAIL]
    markers = [m for m in patch_markers(history) if m["id"] == ACTIVATE_BEFORE_MAILS_PATCH]
    assert markers == [{"id": ACTIVATE_BEFORE_MAILS_PATCH, "deprecated": True}]
    for stage in STAGES:
        assert await replays(stage, history), stage


async def test_an_organization_that_fails_to_activate_mails_nobody(flows: Flows) -> None:
    """The point of the change: a rolled-back bootstrap sent no dead links."""
    assert isinstance(flows.app, FaultyApp)
    flows.app.fail("activate", DNSNotVerified("injected"))
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input("no-dead-links", domain=False), flows.task_queue
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert progress.failed_step == "activate"
    assert flows.mailer.sent == []
    for inv_id in progress.invitation_ids:
        assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "revoked"
    flows.app.close()


async def test_once_activated_the_bootstrap_can_no_longer_be_cancelled(flows: Flows) -> None:
    assert isinstance(flows.app, FaultyApp)
    flows.app.hang("record_email_sent")  # holds the bootstrap in its mail step
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input("too-late", invitees=1, domain=False), flows.task_queue
        )
        await wait_for_step(handle, "send_invitations")
        try:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(OrganizationBootstrapWorkflow.request_cancel, "no")
        finally:
            flows.app.release()
        result = await handle.result()
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "CancelRefused"
    assert result.completed_steps[-3:] == [
        "activate",
        "send_invitations",
        "start_invitation_workflows",
    ]
    flows.app.close()
