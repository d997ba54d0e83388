"""A deactivated organization's invitations cannot be accepted, on the real dev server:
after a compensated bootstrap (the saga) and after a direct deactivation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from tests.worker.flows import FaultyApp, Flows, bootstrap_input, sqlite_app

from a4c_domain import invitation_id, organization_id
from a4c_domain.errors import DNSNotVerified, OrganizationInactive
from a4c_domain.invitation import ORGANIZATION_DEACTIVATED
from a4c_worker.client import accept_invitation, start_bootstrap
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path, FaultyApp)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


def mailed_token(flows: Flows, email: str) -> str:
    """What the invitee finds in the mail's link."""
    text = flows.invitation_mails(email)[-1].text
    return text.split("?token=", 1)[1].split()[0]


async def test_a_compensated_bootstraps_invitations_cannot_be_accepted(flows: Flows) -> None:
    slug = "undone-invites"
    assert isinstance(flows.app, FaultyApp)
    # After the invitations were issued. (Since 0.4.0 no mail has gone out yet: the token
    # is the one a link would carry, as a bootstrap of 0.3.0 had mailed it.)
    flows.app.fail("activate", DNSNotVerified("injected"))
    async with flows.worker():
        handle = await start_bootstrap(flows.client, bootstrap_input(slug), flows.task_queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert all(c.outcome != "failed" for c in progress.compensations), progress.compensations

    org_id = organization_id(slug)
    emails = [f"person{i}@{slug}.example.com" for i in range(2)]
    for email in emails:
        inv_id = invitation_id(org_id, email, 1)
        with pytest.raises(OrganizationInactive):
            flows.app.accept_invitation(
                organization_id=org_id,
                invitation_id=inv_id,
                token=flows.app.tokens.token(inv_id, 1),
                user_id="late-user",
            )
        inv = flows.app.get_invitation(inv_id, org_id)
        assert inv.status == "revoked" and inv.revoke_reason
    # The saga's revocation and the deactivation's together: one Revoked per invitation.
    counts = flows.event_counts()
    assert counts["Invitation.Revoked"] == len(emails)
    assert counts["Invitation.Accepted"] == 0


async def test_a_directly_deactivated_organizations_invitation_is_refused_by_the_workflow(
    flows: Flows,
) -> None:
    slug = "switched-off"
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input(slug, invitees=1, domain=False), flows.task_queue
        )
        result = await handle.result()
        inv_id = result.invitation_ids[0]
        email = f"person0@{slug}.example.com"
        token = mailed_token(flows, email)

        flows.app.deactivate(organization_id=result.organization_id, reason="contract ended")
        inv = flows.app.get_invitation(inv_id, result.organization_id)
        assert (inv.status, inv.revoke_reason) == ("revoked", ORGANIZATION_DEACTIVATED)

        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await accept_invitation(flows.client, inv_id, token, "late-user")
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type in ("OrganizationInactive", "InvitationRevoked"), cause.type
    assert flows.event_counts()["Invitation.Accepted"] == 0
