"""Record the offboarding workflow's histories: ``python -m
tests.worker.histories.record_offboarding <release>``.

Like :mod:`tests.worker.histories.record_webhooks` (a fresh dev server, in-memory DNS
and mail, a SQLite store in a temporary folder), for the paths of
``OrganizationOffboardingWorkflow``: offboarded (an invitation revoked, its workflow
ended, the DNS record removed), cancelled inside the grace period, and refused (no such
organization). Workflow ids and slugs are fixed. Files that exist are never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from tests.support import wait_for_async
from tests.worker.flows import FAST_STEPS, Flows, bootstrap_input, sqlite_app
from tests.worker.histories.recording import record_release

from a4c_worker.client import OffboardingHandle, start_bootstrap, start_offboarding
from a4c_worker.workflows.models import OffboardingInput
from a4c_worker.workflows.offboarding import OrganizationOffboardingWorkflow

TASK_QUEUE = "a4c-record-offboarding-histories"
PATHS = ("offboarding_completed", "offboarding_cancelled", "offboarding_refused")


def spec(slug: str, grace_period_seconds: float = 0) -> OffboardingInput:
    return OffboardingInput(
        slug=slug,
        reason="recorded: contract ended",
        grace_period_seconds=grace_period_seconds,
        admins=[f"admin@{slug}.example.com"],
        activities=FAST_STEPS,
    )


async def at_grace_period(handle: OffboardingHandle) -> bool:
    progress = await handle.query(OrganizationOffboardingWorkflow.progress)
    return progress.current_step == "grace_period"


async def record(client: Client, scratch: Path) -> dict[str, WorkflowHistory]:
    app = sqlite_app(scratch)
    flows = Flows(app=app, client=client, task_queue=TASK_QUEUE)
    recorded: dict[str, WorkflowHistory] = {}
    try:
        async with flows.worker():
            for slug in ("history-leaver", "history-stayer"):
                bootstrap = bootstrap_input(slug, invitees=1)
                await (await start_bootstrap(client, bootstrap, TASK_QUEUE)).result()

            done = await start_offboarding(client, spec("history-leaver"), TASK_QUEUE)
            await done.result()
            recorded["offboarding_completed"] = await done.fetch_history()

            waiting = await start_offboarding(client, spec("history-stayer", 600), TASK_QUEUE)
            await wait_for_async(
                lambda: at_grace_period(waiting), what="the grace period", interval=0.05
            )
            await waiting.execute_update(
                OrganizationOffboardingWorkflow.request_cancel, "recorded: customer stays"
            )
            with contextlib.suppress(WorkflowFailureError):
                await waiting.result()
            recorded["offboarding_cancelled"] = await waiting.fetch_history()

            refused = await start_offboarding(client, spec("history-nobody"), TASK_QUEUE)
            with contextlib.suppress(WorkflowFailureError):
                await refused.result()
            recorded["offboarding_refused"] = await refused.fetch_history()
    finally:
        app.close()
    return recorded


async def main() -> None:
    await record_release(__doc__.splitlines()[0], PATHS, record)


if __name__ == "__main__":
    asyncio.run(main())
