"""Re-record the histories the replay test checks: ``python -m tests.worker.histories.record``.

Runs the main paths (happy bootstrap, a failing step compensated, a cancelled bootstrap,
an accepted invitation) on a fresh dev server with in-memory providers and writes each
workflow's history as ``<name>.json`` beside this file. Re-record only on purpose: a
change that cannot replay the old files would break workflows already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from tests.servers.temporal import find_temporal_cli
from tests.worker.flows import FaultyApp, Flows, bootstrap_input, sqlite_app, wait_for_step

from a4c_domain.errors import DNSNotVerified
from a4c_worker.client import accept_invitation, invitation_handle, start_bootstrap
from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow

HERE = Path(__file__).parent


async def save(handle: WorkflowHandle[object, object], name: str) -> None:
    history = await handle.fetch_history()
    (HERE / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name}.json ({len(history.events)} events)")


async def record(client: Client, folder: Path) -> None:
    app = sqlite_app(folder, FaultyApp)
    flows = Flows(app=app, client=client, task_queue="a4c-record-histories")
    async with flows.worker():
        happy = await start_bootstrap(client, bootstrap_input("history-happy"), flows.task_queue)
        result = await happy.result()
        await save(happy, "bootstrap_happy")  # type: ignore[arg-type]

        inv_id = result.invitation_ids[0]
        token = flows.mailer.sent_to("person0@history-happy.example.com")[0].text
        token = token.split("?token=", 1)[1].split()[0]
        await accept_invitation(client, inv_id, token, "user-h")
        child = invitation_handle(client, inv_id)
        await child.result()
        await save(child, "invitation_accepted")  # type: ignore[arg-type]

        app.fail("activate", DNSNotVerified("recorded failure"))
        failing = await start_bootstrap(client, bootstrap_input("history-fail"), flows.task_queue)
        with contextlib.suppress(WorkflowFailureError):
            await failing.result()
        await save(failing, "bootstrap_compensated")  # type: ignore[arg-type]

        spec = bootstrap_input("history-cancel", propagation_wait_seconds=600)
        cancelled = await start_bootstrap(client, spec, flows.task_queue)
        await wait_for_step(cancelled, "propagation_wait")
        await cancelled.execute_update(OrganizationBootstrapWorkflow.request_cancel, "recorded")
        with contextlib.suppress(WorkflowFailureError):
            await cancelled.result()
        await save(cancelled, "bootstrap_cancelled")  # type: ignore[arg-type]
    app.close()


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER, dev_server_existing_path=find_temporal_cli()
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            await record(env.client, Path(folder))
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
