"""The daemon's automatic disable, end to end: a receiver answering 410, the daemon's
:class:`TemporalDisabler`, the real Temporal dev server and a worker running the
endpoint workflow, which disables the endpoint in the store; projected, nothing more
is fanned out or sent to it."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from a4c_domain import ALL_ORGANIZATIONS
from a4c_outbound.transport import OutboundPolicy
from a4c_projector.dialects.connection import connect
from a4c_projector.queries import ReadModel
from a4c_webhooks import store
from a4c_webhooks.daemon import Daemon, DaemonOptions
from a4c_webhooks.disable import TemporalDisabler
from a4c_worker.activities.webhooks import WebhookActivities
from a4c_worker.worker import create_worker
from tests.support import wait_for_async
from tests.webhooks.delivery_support import TEST_SCHEDULE, World
from tests.webhooks.receiver import Answer, Receiver
from tests.worker.flows import LINKS, Flows


async def test_a_410_disables_the_endpoint_through_the_worker(
    world: World, temporal_client: Client, task_queue: str, receiver: Receiver
) -> None:
    receiver.default = Answer(410)
    _, endpoint = world.subscribed(receiver, 2, owned=True)
    flows = Flows(app=world.app, client=temporal_client, task_queue=task_queue)
    assert flows.verifier is not None
    activities = WebhookActivities(
        world.app, flows.dns, flows.verifier, flows.mailer, LINKS, txt=flows.txt
    )

    async def client() -> Client:
        return temporal_client

    daemon = Daemon(
        world.store.location,
        world.keys,
        OutboundPolicy(allow_http=True, allow_private=True, timeout=2.0),
        DaemonOptions(schedule=TEST_SCHEDULE, disable_after=3600.0, poll_interval=0.05),
        TemporalDisabler(client, task_queue),
    )

    async def disabled() -> bool:
        view = await asyncio.to_thread(world.app.get_webhook_endpoint, ALL_ORGANIZATIONS, endpoint)
        return view.status == "disabled"

    async with create_worker(temporal_client, task_queue, activities.webhook_activities()):
        running = asyncio.create_task(daemon.run())
        try:
            await wait_for_async(disabled, 60, "the endpoint disabled")
        finally:
            daemon.stop()
            assert await running == 0
    view = world.app.get_webhook_endpoint(ALL_ORGANIZATIONS, endpoint)
    assert view.disabled_automatically
    assert view.disabled_reason is not None and "410" in view.disabled_reason
    world.project()
    with ReadModel(world.store.location) as read_model:
        row = read_model.webhook_endpoint(endpoint)
    assert row is not None and row.status == "disabled"
    with connect(world.store.location) as db:
        assert store.gauges(db).disabled_endpoints == 1
        assert store.due(db, set(), 10) == []  # nothing more is sent to it
    assert len(receiver.snapshot()) == 1
