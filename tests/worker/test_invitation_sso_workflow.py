"""InvitationWorkflow's ``accept_with_sso`` on the real Temporal dev server, a second test
OpenID provider (keys of its own) as the organization's: the organization verified the
invitees' e-mail domain and its single sign-on is in force, so the dev sign-in is
refused (``SSORequired``); a real code-flow sign-in through its provider as another
address of the domain is refused (``IdentityMismatch``), a sign-in that proves nothing
fails with its type, and the invited person's sign-in accepts as the provider's
subject, the invitation still waiting after each refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from tests.servers.oidc import OIDCClient, OIDCProvider, sub_for
from tests.worker.flows import (
    Flows,
    bootstrap_input,
    cover_with_sso,
    provider_sign_in,
    sso_flows,
)
from tests.worker.test_invitation_workflow import token_of, update_failure_type

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.email_domains import email_domain_of
from a4c_domain.identity import SignInIdentity, sso_user_id
from a4c_worker.client import (
    accept_invitation,
    accept_invitation_with_sso,
    invitation_handle,
    start_bootstrap,
)
from a4c_worker.contracts import SignInCode
from a4c_worker.workflows.invitation import InvitationWorkflow


@pytest.fixture
async def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> AsyncIterator[Flows]:
    async with sso_flows(tmp_path, temporal_client, task_queue) as running:
        yield running


async def code(provider: OIDCProvider, client: OIDCClient, email: str) -> SignInCode:
    signed = await provider_sign_in(provider, client, email)
    return SignInCode.model_validate(signed.model_dump(exclude={"generation"}))


async def test_an_invitee_covered_by_sso_accepts_only_through_the_organizations_provider(
    flows: Flows, own_provider: OIDCProvider
) -> None:
    spec = bootstrap_input("sso-invitee", invitees=1, domain=False)
    result = await (await start_bootstrap(flows.client, spec, flows.task_queue)).result()
    inv_id = result.invitation_ids[0]
    inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    client = own_provider.register_client("http://127.0.0.1:9/sso/callback")
    cover_with_sso(
        flows.app, inv.organization_id, email_domain_of(inv.email), own_provider.issuer, client
    )
    token = token_of(flows, inv_id)

    dev = SignInIdentity(issuer=None, subject="dev:1", email=inv.email)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await accept_invitation(flows.client, inv_id, token, "dev:1", dev)
    assert update_failure_type(refused.value) == "SSORequired"

    colleague = f"colleague@{email_domain_of(inv.email)}"
    with pytest.raises(WorkflowUpdateFailedError) as wrong:
        await accept_invitation_with_sso(
            flows.client, inv_id, token, await code(own_provider, client, colleague)
        )
    assert update_failure_type(wrong.value) == "IdentityMismatch"

    spent = await code(own_provider, client, inv.email)
    forged = spent.model_copy(update={"nonce": "not-the-sign-ins"})
    with pytest.raises(WorkflowUpdateFailedError) as unproven:
        await accept_invitation_with_sso(flows.client, inv_id, token, forged)
    assert update_failure_type(unproven.value) == "InvalidIDToken"
    with pytest.raises(WorkflowUpdateFailedError) as reused:
        await accept_invitation_with_sso(flows.client, inv_id, token, spent)  # spent above
    assert update_failure_type(reused.value) == "CodeRejected"
    status = await invitation_handle(flows.client, inv_id).query(InvitationWorkflow.status)
    assert status.state == "pending"

    signed = await code(own_provider, client, inv.email.upper())
    accepted = await accept_invitation_with_sso(flows.client, inv_id, token, signed)
    subject = sub_for(inv.email)
    user = sso_user_id(own_provider.issuer, subject)
    assert (accepted.state, accepted.accepted_by) == ("accepted", user)
    stored = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    assert (stored.accepted_by, stored.accepted_issuer, stored.accepted_subject) == (
        user,
        own_provider.issuer,
        subject,
    )
    history = (await invitation_handle(flows.client, inv_id).fetch_history()).to_json()
    assert token not in history and client.client_secret not in history
