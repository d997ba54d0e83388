"""Wrong tokens cannot jam an invitation (issue 9, item 4).

A dev server of its own runs with Temporal's per-execution update limit lowered to
:data:`UPDATE_LIMIT`, so the old failure (every wrong accept written to history until
the limit refuses the right one, and revoke and resend with it) shows in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer
from tests.servers.temporal import start_dev_server
from tests.worker.flows import FAST_STEPS, UNLIMITED_RESENDS, Flows, bootstrap_input, sqlite_app
from tests.worker.histories.contents import plain_text

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.tokens import hash_token
from a4c_worker.attempts import AcceptGuard, AttemptLimit
from a4c_worker.client import (
    accept_invitation,
    invitation_handle,
    resend_invitation,
    revoke_invitation,
    start_bootstrap,
    start_invitation,
)
from a4c_worker.contracts import accept_proof
from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.metrics import WorkerMetrics
from a4c_worker.worker import WORKFLOWS, create_worker, workflow_runner
from a4c_worker.workflows.invitation import InvitationWorkflow
from a4c_worker.workflows.models import (
    AcceptRequest,
    InvitationInput,
    invitation_workflow_id,
)

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
    text = flows.invitation_mails(flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).email)[
        -1
    ].text
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
        before = plain_text((await handle.fetch_history()).to_json())
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
                InvitationWorkflow.accept,
                AcceptRequest(token_proof=accept_proof(fresh), user_id="eve"),
            )
    assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).accepted_by == "user-1"
    after = plain_text((await handle.fetch_history()).to_json())
    for secret in (token, fresh, accept_proof(token), hash_token(token), hash_token(fresh)):
        assert secret not in after
    assert "mallory" not in after
    assert accept_proof(fresh) in after  # the consumed one is: the search reads payloads


async def test_revoke_works_after_a_flood(flows: Flows) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "jam-revoke")
        await flood(flows.client, inv_id, UPDATE_LIMIT * 4)
        status = await revoke_invitation(flows.client, inv_id, "flooded")
    assert status.state == "revoked"
    assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "revoked"


async def test_wrong_tokens_past_the_limit_are_throttled_until_the_window_passes(
    flows: Flows,
) -> None:
    metrics = WorkerMetrics()
    guard = AcceptGuard(AttemptLimit(max_wrong=3, window_seconds=1.5), metrics.count_refused_accept)
    worker = create_worker(
        flows.client, flows.task_queue, flows.activities().all(), accept_guard=guard
    )
    async with worker:
        inv_id = await bootstrapped_invitation(flows, "jam-throttle")
        other_id = await bootstrapped_invitation(flows, "jam-bystander")
        assert await flood(flows.client, inv_id, 3) == {"InvalidToken"}
        with pytest.raises(WorkflowUpdateFailedError) as throttled:
            await accept_invitation(flows.client, inv_id, "wrong-token-x", "mallory")
        cause = throttled.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "TooManyAttempts"
        assert str(inv_id) in cause.message
        assert 0 < cause.details[0] <= 1.5  # seconds to wait
        # Another invitation is not affected.
        assert await flood(flows.client, other_id, 1) == {"InvalidToken"}

        await asyncio.sleep(1.6)
        assert await flood(flows.client, inv_id, 1) == {"InvalidToken"}
        assert await flood(flows.client, inv_id, 3) == {"InvalidToken", "TooManyAttempts"}
        # The right token is never throttled: a flood cannot lock the invitee out.
        status = await accept_invitation(flows.client, inv_id, token_of(flows, inv_id), "user-1")
        assert status.state == "accepted"
        await revoke_invitation(flows.client, other_id, "test over")

    def refused(kind: str) -> float | None:
        return metrics.registry.get_sample_value(
            "a4c_worker_accept_proofs_refused_total", {"refusal": kind}
        )

    assert (refused("InvalidToken"), refused("TooManyAttempts")) == (7, 2)


async def test_a_long_history_continues_as_new_carrying_the_invitation(flows: Flows) -> None:
    org = flows.app.register_organization(name="Long", slug="jam-long", org_type="partner")
    inv = flows.app.invite(
        organization_id=org.id, email="long@example.com", role="viewer",
        first_name="Long", last_name="History",
    )  # fmt: skip
    spec = InvitationInput(
        invitation_id=inv.id,
        organization_name="Long",
        activities=FAST_STEPS,
        history_events_before_continue=50,
        resends=UNLIMITED_RESENDS,
    )
    async with flows.worker():
        handle = await start_invitation(flows.client, spec, flows.task_queue)
        first_run = handle.result_run_id
        for _ in range(6):
            await resend_invitation(flows.client, inv.id)
        await flood(flows.client, inv.id, 5)
        latest = invitation_handle(flows.client, inv.id)
        status = await latest.query(InvitationWorkflow.status)
        assert (status.token_generation, status.emails_sent) == (7, 7)
        # The old generation's token is refused, the current one accepted.
        with pytest.raises(WorkflowUpdateFailedError):
            await accept_invitation(flows.client, inv.id, flows.app.tokens.token(inv.id, 6), "u")
        accepted = await accept_invitation(flows.client, inv.id, token_of(flows, inv.id), "u-1")
        assert accepted.state == "accepted"
        final_run = (await latest.describe()).run_id
    assert final_run != first_run
    first = await flows.client.get_workflow_handle(
        invitation_workflow_id(inv.id), run_id=first_run
    ).fetch_history()
    assert first.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert len(first.events) < 80
    # Both kinds of run replay deterministically with the code that recorded them.
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )
    for run in (first, await latest.fetch_history()):
        assert (await replayer.replay_workflow(run)).replay_failure is None


async def test_resends_past_the_update_limit_continue_as_new(flows: Flows) -> None:
    """Temporal suggests continue-as-new near the per-execution update limit: taken."""
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "jam-resends")
        for _ in range(UPDATE_LIMIT + 5):
            status = await resend_invitation(flows.client, inv_id)
        assert status.token_generation == UPDATE_LIMIT + 6
        accepted = await accept_invitation(flows.client, inv_id, token_of(flows, inv_id), "u-2")
    assert accepted.state == "accepted"
    assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).token_generation == UPDATE_LIMIT + 6
