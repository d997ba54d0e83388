"""a4c-api with ``TEMPORAL_PAYLOAD_KEYS``: it starts, reads and answers workflows whose
history is sealed, and that history holds no invitee's address or name.

An API instance and a worker share the stack's store and Temporal, both with the same
payload key and a task queue of their own. Onboarding through ``POST /v1/organizations``
(which reads the bootstrap's input back from history), the same request again, and the
progress of ``GET`` all work; the history, read raw, holds none of the invitees.
"""

from __future__ import annotations

import uuid

import httpx
from tests.api.conftest import Stack, stack_activities, unique_slug
from tests.api.v1_support import onboarding, wait_for_state
from tests.worker.histories.contents import plain_text

from a4c_worker.client import bootstrap_handle, connect
from a4c_worker.codec import PayloadKeys
from a4c_worker.config import ACCEPT_PATH
from a4c_worker.connection import TemporalSettings
from a4c_worker.providers.email import FileMailer
from a4c_worker.worker import create_worker

KEY = PayloadKeys.generate("api-1").entry()


async def test_the_api_onboards_through_sealed_history(api_stack: Stack) -> None:
    stack = api_stack
    queue = f"a4c-sealed-{uuid.uuid4().hex[:10]}"
    sealing = await connect(
        TemporalSettings(
            temporal_address=stack.temporal_address, temporal_payload_keys=KEY
        ).temporal_connection()
    )
    activities = stack_activities(
        stack.app, FileMailer(stack.mail_dir), stack.served.url(ACCEPT_PATH)
    )
    slug = unique_slug("sealed")
    request = onboarding(slug, invitees=2)
    headers = {"Authorization": f"Bearer {stack.operator_key}"}
    async with create_worker(sealing, queue, activities.all()):
        with stack.serve(TEMPORAL_TASK_QUEUE=queue, TEMPORAL_PAYLOAD_KEYS=KEY) as served:
            async with httpx.AsyncClient(base_url=served.base_url, timeout=60.0) as client:
                first = await client.post("/v1/organizations", json=request, headers=headers)
                assert first.status_code == 202, first.text
                again = await client.post("/v1/organizations", json=request, headers=headers)
                assert again.status_code == 200, again.text
                done = await wait_for_state(stack, client, slug, headers, {"completed"})
                assert done["organization"]["status"] == "active"
    raw = stack.client  # the session's client: no payload keys, history as stored
    history = plain_text((await bootstrap_handle(raw, slug).fetch_history()).to_json())
    assert f"org-bootstrap-{slug}" in history
    for invitee in request["invitees"]:
        for field in ("email", "first_name", "last_name"):
            assert invitee[field] not in history, invitee[field]
