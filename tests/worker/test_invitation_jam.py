"""Wrong tokens cannot jam an invitation (issue 9, item 4).

A dev server of its own runs with Temporal's per-execution update limit lowered to
:data:`UPDATE_LIMIT`, so the old failure (every wrong accept written to history until
the limit refuses the right one, and revoke and resend with it) shows in seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from tests.servers.temporal import start_dev_server
from tests.worker.flows import Flows, bootstrap_input, sqlite_app

from a4c_domain.tokens import hash_token
from a4c_worker.client import (
    accept_invitation,
    invitation_handle,
    resend_invitation,
    revoke_invitation,
    start_bootstrap,
)
from a4c_worker.workflows.invitation import InvitationWorkflow
from a4c_worker.workflows.models import accept_proof

# Temporal's default is 2,000 updates per execution; 25 makes the jam quick to reach.
UPDATE_LIMIT = 25
FLOOD = 300


@pytest.fixture(scope="module")
async def limited_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server(f"history.maxTotalUpdates={UPDATE_LIMIT}")
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def flows(tmp_path: Path, limited_env: WorkflowEnvironment, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app=app, client=limited_env.client, task_queue=task_queue)
    app.close()


async def bootstrapped_invitation(flows: Flows, slug: str) -> UUID:
    handle = await start_bootstrap(
        flows.client, bootstrap_input(slug, invitees=1, domain=False), flows.task_queue
    )
    return (await handle.result()).invitation_ids[0]


def token_of(flows: Flows, inv_id: UUID) -> str:
    """The token in the last mail the invitee received."""
    text = flows.mailer.sent_to(flows.app.get_invitation(inv_id).email)[-1].text
    return text.split("?token=", 1)[1].split()[0]


def refusal(exc: WorkflowUpdateFailedError) -> str | None:
    cause = exc.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def flood(client: Client, inv_id: UUID, count: int) -> set[str | None]:
    """``count`` accepts with wrong tokens; the refusal types they met."""
    seen: set[str | None] = set()
    for n in range(count):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await accept_invitation(client, inv_id, f"wrong-token-{n}", "mallory")
        seen.add(refusal(refused.value))
    return seen


async def test_a_flood_of_wrong_tokens_neither_jams_nor_reaches_history(flows: Flows) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "jam-flood")
        seen = await flood(flows.client, inv_id, FLOOD)
        assert seen <= {"InvalidToken", "TooManyAttempts"}, seen
        handle = invitation_handle(flows.client, inv_id)
        before = (await handle.fetch_history()).to_json()
        token = token_of(flows, inv_id)
        for secret in (token, accept_proof(token), hash_token(token)):
            assert secret not in before
        for n in range(FLOOD):
            assert accept_proof(f"wrong-token-{n}") not in before

        # Resend still works after the flood (the old code: update limit reached).
        await resend_invitation(flows.client, inv_id)
        fresh = token_of(flows, inv_id)
        assert fresh != token
        await flood(flows.client, inv_id, 20)
        status = await accept_invitation(flows.client, inv_id, fresh, "user-1")
        assert status.state == "accepted"
        await handle.result()

        # The accepting update's proof is in history now, and worth nothing (the
        # execution is over; the server refuses an update to it).
        with pytest.raises(RPCError, match="already completed"):
            await handle.execute_update(
                InvitationWorkflow.accept, {"token_proof": accept_proof(fresh), "user_id": "eve"}
            )
    assert flows.app.get_invitation(inv_id).accepted_by == "user-1"
    after = (await handle.fetch_history()).to_json()
    for secret in (token, fresh, accept_proof(token), hash_token(token), hash_token(fresh)):
        assert secret not in after
    assert "mallory" not in after


async def test_revoke_works_after_a_flood(flows: Flows) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "jam-revoke")
        await flood(flows.client, inv_id, UPDATE_LIMIT * 4)
        status = await revoke_invitation(flows.client, inv_id, "flooded")
    assert status.state == "revoked"
    assert flows.app.get_invitation(inv_id).status == "revoked"
