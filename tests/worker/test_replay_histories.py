"""Determinism: the recorded histories of the main paths still replay with today's code.

A change to the workflows that would break executions already running (reordered
steps, a removed activity, a changed payload model) fails here. Re-record on purpose
with ``python -m tests.worker.histories.record``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.worker import WORKFLOWS, workflow_runner

HISTORIES = Path(__file__).parent / "histories"
RECORDED = {path.stem: path.read_text() for path in sorted(HISTORIES.glob("*.json"))}
EXPECTED = {
    "bootstrap_happy",
    "bootstrap_compensated",
    "bootstrap_cancelled",
    "invitation_accepted",
}


def test_every_main_path_has_a_recorded_history() -> None:
    assert set(RECORDED) == EXPECTED


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(name, RECORDED[name])
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
    assert len(history.events) > 10
