"""Record the webhook endpoint workflow's histories: ``python -m
tests.worker.histories.record_webhooks <release>``.

Like :mod:`tests.worker.histories.record` (a fresh dev server, in-memory mail, a SQLite
store in a temporary folder), for the paths of ``WebhookEndpointWorkflow``: an automatic
disable that mails an admin, and a change the domain refuses (a failed run). Workflow
ids, the organization's slug and so the endpoint's id are fixed. Files that exist are
never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from tests.worker.flows import FAST_STEPS, LINKS, Flows, sqlite_app
from tests.worker.histories.recording import record_release

from a4c_domain import webhook_endpoint_id
from a4c_worker.activities.webhooks import WebhookActivities
from a4c_worker.worker import create_worker
from a4c_worker.workflows.models import WEBHOOK_ENDPOINT_WORKFLOW_PREFIX, WebhookEndpointChange
from a4c_worker.workflows.webhook_endpoint import WebhookEndpointWorkflow

TASK_QUEUE = "a4c-record-webhook-histories"
PATHS = ("webhook_endpoint_disabled", "webhook_endpoint_refused")


async def record(client: Client, scratch: Path) -> dict[str, WorkflowHistory]:
    app = sqlite_app(scratch)
    flows = Flows(app=app, client=client, task_queue=TASK_QUEUE)
    assert flows.verifier is not None
    webhooks = WebhookActivities(app, flows.dns, flows.verifier, flows.mailer, LINKS, txt=flows.txt)
    activities = {
        a.__name__: a for a in [*flows.activities().all(), *webhooks.webhook_activities()]
    }
    org = app.register_organization(
        name="Org history-hooks", slug="history-hooks", org_type="partner"
    )
    endpoint_id = webhook_endpoint_id(org.id, "history")
    common: dict[str, Any] = {"endpoint_id": endpoint_id, "activities": FAST_STEPS}

    async def run(step: str, **fields: Any) -> WorkflowHistory:
        handle = await client.start_workflow(
            WebhookEndpointWorkflow.run,
            WebhookEndpointChange.model_validate({**common, **fields}),
            id=f"{WEBHOOK_ENDPOINT_WORKFLOW_PREFIX}{endpoint_id}-{step}",
            task_queue=TASK_QUEUE,
        )
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        return await handle.fetch_history()

    recorded: dict[str, WorkflowHistory] = {}
    try:
        async with create_worker(client, TASK_QUEUE, list(activities.values())):
            await run(
                "add",
                action="add",
                scope=org.id,
                owner_id=org.id,
                name="history",
                url="https://hooks.history-hooks.example.com/a4c",
                secret="k1:cmVjb3JkZWQ",
            )
            recorded["webhook_endpoint_disabled"] = await run(
                "disable",
                action="disable",
                reason="recorded: failing for 5 days",
                automatic=True,
                notify=["admin@history-hooks.example.com"],
            )
            await run("delete", action="delete", scope=org.id)
            recorded["webhook_endpoint_refused"] = await run(
                "enable", action="enable", scope=org.id
            )
    finally:
        app.close()
    if len(flows.mailer.sent) != 1:
        raise RuntimeError(f"expected one disable mail, got {len(flows.mailer.sent)}")
    return recorded


async def main() -> None:
    await record_release(__doc__.splitlines()[0], PATHS, record)


if __name__ == "__main__":
    asyncio.run(main())
