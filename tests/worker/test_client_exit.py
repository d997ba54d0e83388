"""Short-lived Temporal client commands exit with their own code, never an abort.

The SDK's runtime threads can call into an interpreter that is finalizing
(temporalio/sdk-python#300): ``Fatal Python error: PyGILState_Release`` and SIGABRT
(exit 134) now and then. The console scripts flush their output and leave before
finalization; this runs the real ``a4c-worker`` script 30 times against the session's
dev server (in parallel batches, to keep it short) and none may abort.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

A4C_WORKER = str(Path(sys.executable).parent / "a4c-worker")
RUNS, BATCH = 30, 6


async def run_status(env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        A4C_WORKER,
        "status",
        "never-bootstrapped",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_thirty_status_commands_exit_1_and_never_abort(
    temporal_env: WorkflowEnvironment,
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WORKFLOW_MODE": "development",  # production would also ask for the payload keys
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
    }
    results: list[tuple[int, str, str]] = []
    for _ in range(RUNS // BATCH):
        results += await asyncio.gather(*(run_status(env) for _ in range(BATCH)))
    aborted = [err for code, _, err in results if code in (134, -signal.SIGABRT)]
    assert not aborted, f"{len(aborted)} of {RUNS} aborted:\n{aborted[0]}"
    for code, out, err in results:
        assert (code, out, err) == (1, "", "no bootstrap for slug 'never-bootstrapped'\n")
