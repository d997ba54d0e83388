"""Determinism: every history recorded by every release still replays with today's code.

A change to the workflows that would break executions already running (reordered
steps, a removed activity, a changed payload model, a new command without
``workflow.patched``) fails here. The files are discovered (``tests/worker/histories``:
0.1.0 at the top level, later releases in ``v<release>/``); a release adds its own with
``python -m tests.worker.histories.record <release>`` and never re-records an older one.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from tests.worker.histories import HISTORIES, recorded_histories

from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.worker import WORKFLOWS, workflow_runner

RECORDED = recorded_histories()
# Histories of executions that ran to their end: the replay must reach it too.
CLOSED = {
    f"workflow_execution_{end}_event_attributes"
    for end in ("completed", "failed", "continued_as_new", "canceled")
}


def test_histories_of_every_release_are_found() -> None:
    """Guards the discovery itself: a glob that finds nothing would replay nothing."""
    releases = {path.parent for path in RECORDED.values()}
    assert HISTORIES in releases  # 0.1.0
    assert any(folder.name.startswith("v") for folder in releases), releases
    for folder in releases:
        kinds = {path.stem.split("_")[0] for path in RECORDED.values() if path.parent == folder}
        # Every release records both onboarding workflows; 0.5.0 adds the webhook
        # endpoint's, the offboarding's and single sign-on's (the SSO configuration and
        # the e-mail domain verification).
        extras = {"webhook", "offboarding", "sso", "email"}
        assert kinds - extras in ({"bootstrap", "invitation"}, set()), folder
        assert kinds, folder


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return Replayer(
        workflows=WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_recorded_history_replays(replayer: Replayer, name: str) -> None:
    history = WorkflowHistory.from_json(name, RECORDED[name].read_text())
    assert history.events[-1].WhichOneof("attributes") in CLOSED
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
