"""An invitation ended in the store ends its workflow now, not at its expiry (issue 16,
item 13): a newer generation of the address supersedes it, or its organization is
deactivated (a bootstrap's compensation); the activity that did it signals the workflow,
which reads the store and ends as the invitation did. On the real dev server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.worker import Replayer
from tests.support import wait_for_async
from tests.worker.flows import FAST_STEPS, Flows, bootstrap_input, sqlite_app

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.invitation import ORGANIZATION_DEACTIVATED, superseded_reason
from a4c_worker.client import invitation_handle, invite, start_bootstrap
from a4c_worker.contracts import Invitee
from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.worker import WORKFLOWS, workflow_runner
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.bootstrap_progress import REGISTER
from a4c_worker.workflows.invitation import InvitationWorkflow

# Far beyond the test: only the signal can end the workflow in time (else it hangs).
ENDS_WITHIN = 60.0


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


ADA = Invitee(email="ada@example.com", role="member", first_name="Ada", last_name="Lovelace")


async def test_a_superseded_generation_ends_its_workflow(flows: Flows) -> None:
    org = flows.app.register_organization(name="Gens", slug="gens-one", org_type="partner")
    async with flows.worker():
        first = await invite(
            flows.client, organization_id=org.id, organization_name="Gens", invitee=ADA,
            task_queue=flows.task_queue, activities=FAST_STEPS,
        )  # fmt: skip
        assert first.state == "pending"
        second = await invite(
            flows.client, organization_id=org.id, organization_name="Gens", invitee=ADA,
            generation=2, task_queue=flows.task_queue, activities=FAST_STEPS,
        )  # fmt: skip
        ended = await asyncio.wait_for(
            invitation_handle(flows.client, first.invitation_id).result(), ENDS_WITHIN
        )
        still = await invitation_handle(flows.client, second.invitation_id).query(
            InvitationWorkflow.status
        )
        history = await invitation_handle(flows.client, first.invitation_id).fetch_history()
    assert ended.state == "revoked"
    # The signal and the look at the store (behind their patch) replay deterministically.
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=DATA_CONVERTER, workflow_runner=workflow_runner()
    )
    assert (await replayer.replay_workflow(history)).replay_failure is None
    stored = flows.app.get_invitation(first.invitation_id, ALL_ORGANIZATIONS)
    assert (stored.status, stored.revoke_reason) == ("revoked", superseded_reason(2))
    assert still.state == "pending"  # the signal went to the older generation only


async def test_deactivating_the_organization_ends_its_invitations_workflows(
    flows: Flows,
) -> None:
    """Invited while its bootstrap waits for DNS; the bootstrap is cancelled, and its
    compensation deactivates the organization, which revokes the invitation."""
    spec = bootstrap_input("gone-one", invitees=0, propagation_wait_seconds=3600)
    async with flows.worker():
        boot = await start_bootstrap(flows.client, spec, flows.task_queue)

        async def registered() -> bool:
            progress = await boot.query(OrganizationBootstrapWorkflow.progress)
            return REGISTER in progress.completed_steps

        await wait_for_async(registered, what="the organization registered")
        org_id = (await boot.query(OrganizationBootstrapWorkflow.progress)).organization_id
        assert org_id is not None
        invited = await invite(
            flows.client, organization_id=org_id, organization_name=spec.name, invitee=ADA,
            task_queue=flows.task_queue, activities=FAST_STEPS,
        )  # fmt: skip
        assert invited.state == "pending"
        final = await boot.execute_update(OrganizationBootstrapWorkflow.request_cancel, "test")
        assert final.state == "cancelled"
        ended = await asyncio.wait_for(
            invitation_handle(flows.client, invited.invitation_id).result(), ENDS_WITHIN
        )
    assert ended.state == "revoked"
    stored = flows.app.get_invitation(invited.invitation_id, ALL_ORGANIZATIONS)
    assert (stored.status, stored.revoke_reason) == ("revoked", ORGANIZATION_DEACTIVATED)
