"""Inviting through the invitation's own workflow (``a4c_worker.client.invite``).

Real dev server, real worker, SQLite store, in-memory mail: the workflow issues the
invitation, the caller learns the outcome in the same call, the same call again joins
it, and a refusal by the domain stores nothing and comes back typed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from tests.support import wait_for_async
from tests.worker.flows import FAST_STEPS, Flows, bootstrap_input, sqlite_app

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.ids import invitation_id
from a4c_domain.views import OrganizationView
from a4c_worker.client import (
    InvitationClosed,
    InviteRefused,
    invitation_handle,
    invite,
    revoke_invitation,
    start_bootstrap,
)
from a4c_worker.contracts import Invitee
from a4c_worker.workflows.models import InvitationStatus, invitation_workflow_id

ADA = Invitee(email="Ada@Example.COM", role="admin", first_name="Ada", last_name="Lovelace")


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


def organization(flows: Flows, slug: str) -> OrganizationView:
    return flows.app.register_organization(name=f"Org {slug}", slug=slug, org_type="partner")


async def invite_into(
    flows: Flows, org: OrganizationView, invitee: Invitee = ADA, **extra: Any
) -> InvitationStatus:
    return await invite(
        flows.client,
        organization_id=org.id,
        organization_name=org.name,
        invitee=invitee,
        task_queue=flows.task_queue,
        ttl_seconds=3600,
        reminder_before_seconds=600,
        activities=FAST_STEPS,
        **extra,
    )


def invitations_created(flows: Flows) -> list[tuple[str, dict[str, str]]]:
    """(invitation id, metadata) of every invitation created in the store."""
    return [
        (str(agg), meta)
        for name, agg, version, meta in flows.events()
        if name.startswith("Invitation.") and version == 1
    ]


async def test_the_workflow_issues_the_invitation_and_mails_it(flows: Flows) -> None:
    org = organization(flows, "wf-issues")
    async with flows.worker():
        status = await invite_into(flows, org)
        # The id is the domain's: the address normalised, the first generation.
        expected = invitation_id(org.id, "ada@example.com", 1)
        assert (status.invitation_id, status.state) == (expected, "pending")
        assert status.token_generation == 1 and status.expires_at is not None
        handle = invitation_handle(flows.client, expected)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        async def mailed() -> bool:
            return len(flows.mailer.sent_to("ada@example.com")) == 1

        await wait_for_async(mailed, what="the invitation mail")
        await revoke_invitation(flows.client, expected, "test over")
    created = invitations_created(flows)
    assert [inv for inv, _ in created] == [str(expected)]
    # Written by the workflow's activity, not by the caller.
    assert created[0][1]["workflow_id"] == invitation_workflow_id(expected)
    stored = flows.app.get_invitation(expected, ALL_ORGANIZATIONS)
    assert (stored.email, stored.role, stored.email_status) == ("ada@example.com", "admin", "sent")


async def test_the_same_invite_again_joins_the_same_workflow(flows: Flows) -> None:
    org = organization(flows, "wf-twice")
    async with flows.worker():
        first = await invite_into(flows, org)
        handle = invitation_handle(flows.client, first.invitation_id)
        run_id = (await handle.describe()).run_id
        again = await invite_into(flows, org)
        assert again.invitation_id == first.invitation_id
        assert (await handle.describe()).run_id == run_id  # joined, no second run
        await revoke_invitation(flows.client, first.invitation_id, "test over")
        with pytest.raises(InvitationClosed) as closed:  # settled: not issued again
            await invite_into(flows, org)
    assert closed.value.state == "revoked"
    assert str(closed.value) == f"invitation {first.invitation_id} is already revoked"
    assert len(invitations_created(flows)) == 1
    workflows = [
        w
        async for w in flows.client.list_workflows(
            f"WorkflowId = '{invitation_workflow_id(first.invitation_id)}'"
        )
    ]
    assert len(workflows) == 1


async def test_an_inactive_organization_refuses_and_nothing_is_stored(flows: Flows) -> None:
    org = organization(flows, "wf-inactive")
    flows.app.deactivate(organization_id=org.id, reason="closed down")
    events_before = len(flows.events())
    async with flows.worker():
        for _ in range(2):  # a refused (failed) run may be asked again: refused again
            with pytest.raises(InviteRefused) as refused:
                await invite_into(flows, org)
            assert refused.value.error_type == "OrganizationInactive"
            assert str(refused.value) == "organization 'wf-inactive' is deactivated"
        handle = invitation_handle(flows.client, invitation_id(org.id, "ada@example.com", 1))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "OrganizationInactive"
    assert len(flows.events()) == events_before
    assert flows.mailer.sent_to("ada@example.com") == []


async def test_a_different_role_for_the_same_address_is_an_invitation_conflict(
    flows: Flows,
) -> None:
    org = organization(flows, "wf-conflict")
    as_member = ADA.model_copy(update={"role": "member"})
    async with flows.worker():
        first = await invite_into(flows, org)
        # Joining the running workflow: the domain refuses; the update fails, not the run.
        with pytest.raises(InviteRefused) as refused:
            await invite_into(flows, org, as_member)
        assert refused.value.error_type == "InvitationConflict"
        assert str(refused.value) == (
            "ada@example.com is already invited (generation 1) with different role"
        )
        handle = invitation_handle(flows.client, first.invitation_id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await revoke_invitation(flows.client, first.invitation_id, "test over")
    assert flows.app.get_invitation(first.invitation_id, ALL_ORGANIZATIONS).role == "admin"
    assert len(invitations_created(flows)) == 1


async def test_a_conflict_found_by_a_fresh_run_fails_it_with_the_conflict(flows: Flows) -> None:
    """Issued earlier without a workflow: the new run's own issue step meets the conflict."""
    org = organization(flows, "wf-conflict-run")
    issued = flows.app.invite(
        organization_id=org.id, email="ada@example.com", role="admin",
        first_name="Ada", last_name="Lovelace",
    )  # fmt: skip
    events_before = len(flows.events())
    async with flows.worker():
        with pytest.raises(InviteRefused) as refused:
            await invite_into(flows, org, ADA.model_copy(update={"role": "viewer"}))
        with pytest.raises(WorkflowFailureError):
            await invitation_handle(flows.client, issued.id).result()
    assert refused.value.error_type == "InvitationConflict"
    assert "role" in str(refused.value)
    assert len(flows.events()) == events_before
    assert flows.app.get_invitation(issued.id, ALL_ORGANIZATIONS).role == "admin"


async def test_inviting_someone_a_bootstrap_invited_returns_that_invitation(
    flows: Flows,
) -> None:
    spec = bootstrap_input("wf-boot", invitees=1, domain=False)
    async with flows.worker():
        result = await (await start_bootstrap(flows.client, spec, flows.task_queue)).result()
        org = flows.app.get_organization(result.organization_id)
        status = await invite_into(flows, org, spec.invitees[0])
        assert status.invitation_id == result.invitation_ids[0]
        await revoke_invitation(flows.client, status.invitation_id, "test over")
    assert len(invitations_created(flows)) == 1
    assert len(flows.invitation_mails(spec.invitees[0].email)) == 1  # no second mail


async def test_an_invitation_settled_before_its_workflow_ran_is_reported_as_settled(
    flows: Flows,
) -> None:
    """Issued and revoked without a workflow: the run finds it revoked and ends so."""
    org = organization(flows, "wf-settled")
    issued = flows.app.invite(
        organization_id=org.id, email="ada@example.com", role="admin",
        first_name="Ada", last_name="Lovelace",
    )  # fmt: skip
    flows.app.revoke_invitation(
        organization_id=ALL_ORGANIZATIONS, invitation_id=issued.id, reason="changed plans"
    )
    async with flows.worker():
        status = await invite_into(flows, org)
        final = await invitation_handle(flows.client, issued.id).result()
    assert (status.invitation_id, status.state, final.state) == (issued.id, "revoked", "revoked")
    assert flows.mailer.sent_to("ada@example.com") == []


async def test_a_bad_generation_is_refused_before_anything_is_sent(flows: Flows) -> None:
    org = organization(flows, "wf-bad-generation")
    # No worker runs: had the request reached Temporal, this would wait, not raise.
    with pytest.raises(ValidationError) as refused:
        await invite_into(flows, org, generation=0)
    assert [e["loc"] for e in refused.value.errors()] == [("generation",)]
    assert invitations_created(flows) == []
