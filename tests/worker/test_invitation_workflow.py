"""InvitationWorkflow on the real dev server: accept, bad token, revoke, resend, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from tests.worker.flows import FAST_STEPS, Flows, bootstrap_input, sqlite_app
from tests.worker.histories.contents import plain_text

from a4c_domain import ALL_ORGANIZATIONS
from a4c_worker.client import (
    accept_invitation,
    invitation_handle,
    resend_invitation,
    revoke_invitation,
    start_bootstrap,
    start_invitation,
)
from a4c_worker.contracts import accept_proof
from a4c_worker.workflows.invitation import InvitationWorkflow
from a4c_worker.workflows.models import (
    InvitationInput,
    invitation_workflow_id,
)


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


async def bootstrapped_invitation(flows: Flows, slug: str, **extra: Any) -> UUID:
    spec = bootstrap_input(slug, invitees=1, domain=False, **extra)
    handle = await start_bootstrap(flows.client, spec, flows.task_queue)
    result = await handle.result()
    return result.invitation_ids[0]


def token_of(flows: Flows, inv_id: UUID) -> str:
    """What the invitee finds in the mail's link (the real mail, not recomputed)."""
    inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    text = flows.invitation_mails(inv.email)[-1].text
    return text.split("?token=", 1)[1].split()[0]


def update_failure_type(exc: WorkflowUpdateFailedError) -> str | None:
    cause = exc.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def test_accept_with_the_mailed_token_accepts_and_a_bad_token_is_refused(
    flows: Flows,
) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "accept-one")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await accept_invitation(flows.client, inv_id, "not-the-token", "user-1")
        assert update_failure_type(refused.value) == "InvalidToken"
        still = await invitation_handle(flows.client, inv_id).query(InvitationWorkflow.status)
        assert still.state == "pending"

        status = await accept_invitation(flows.client, inv_id, token_of(flows, inv_id), "user-1")
        final = await invitation_handle(flows.client, inv_id).result()
    assert status.state == final.state == "accepted"
    inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    assert (inv.status, inv.accepted_by) == ("accepted", "user-1")


async def test_a_malformed_accept_is_rejected_without_reaching_history(flows: Flows) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "accept-bad")
        handle = invitation_handle(flows.client, inv_id)
        with pytest.raises(WorkflowUpdateFailedError):
            # A raw token where the proof belongs: refused by the update's input model.
            await handle.execute_update(
                "accept", {"token_proof": token_of(flows, inv_id), "user_id": "user-2"}
            )
        await revoke_invitation(flows.client, inv_id, "wrong person")
        await handle.result()
    history = await handle.fetch_history()
    accepted_updates = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    # Only the revoke was accepted into history; the rejected accept left no trace.
    assert len(accepted_updates) == 1
    assert token_of(flows, inv_id) not in plain_text(history.to_json())
    assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "revoked"


async def test_revoke_ends_the_invitation(flows: Flows) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "revoke-one")
        status = await revoke_invitation(flows.client, inv_id, "left the company")
        final = await invitation_handle(flows.client, inv_id).result()
    assert status.state == final.state == "revoked"
    inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    assert (inv.status, inv.revoke_reason) == ("revoked", "left the company")


async def test_a_bad_revoke_reason_is_refused_in_the_callers_terms(flows: Flows) -> None:
    """The validator's refusal names the field, never pydantic's internals."""
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "revoke-blank")
        for reason, message in (("", "must not be empty"), ("a\x00b", "control")):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await revoke_invitation(flows.client, inv_id, reason)
            cause = refused.value.cause
            assert isinstance(cause, ApplicationError) and cause.type == "InvalidCommand"
            assert "invalid input: reason: " in str(cause) and message in str(cause)
            for internal in ("function-after", "constrained-str", "pydantic", "Value error"):
                assert internal not in str(cause)
        status = await revoke_invitation(flows.client, inv_id, "left the company")
    assert status.state == "revoked"


async def test_resend_issues_a_new_token_and_the_old_link_stops_working(flows: Flows) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(flows, "resend-one")
        old_token = token_of(flows, inv_id)
        status = await resend_invitation(flows.client, inv_id)
        new_token = token_of(flows, inv_id)
        assert new_token != old_token
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await accept_invitation(flows.client, inv_id, old_token, "user-3")
        assert update_failure_type(refused.value) == "InvalidToken"
        accepted = await accept_invitation(flows.client, inv_id, new_token, "user-3")
    assert status.token_generation == 2 and status.emails_sent == 2
    assert accepted.state == "accepted"
    inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    assert (inv.token_generation, inv.status) == (2, "accepted")
    ids = [m.message_id for m in flows.invitation_mails(inv.email)]
    assert ids == [
        f"<invitation.{inv_id}.1@mail.a4c.test>",
        f"<invitation.{inv_id}.2@mail.a4c.test>",
    ]


async def test_an_unanswered_invitation_gets_a_reminder_then_expires(flows: Flows) -> None:
    async with flows.worker():
        inv_id = await bootstrapped_invitation(
            flows, "expire-one", invitation_ttl_seconds=3, reminder_before_seconds=2
        )
        final = await invitation_handle(flows.client, inv_id).result()
    assert final.state == "expired"
    assert final.reminder_sent
    inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
    assert inv.status == "expired"
    subjects = [m.subject for m in flows.invitation_mails(inv.email)]
    assert subjects == [
        "Invitation to join Org expire-one",
        "Reminder: your invitation to join Org expire-one",
    ]


async def test_an_invitation_started_on_its_own_sends_its_mail(flows: Flows) -> None:
    org = flows.app.register_organization(name="Solo", slug="solo-one", org_type="partner")
    inv = flows.app.invite(
        organization_id=org.id, email="solo@example.com", role="viewer",
        first_name="Solo", last_name="Person",
    )  # fmt: skip
    async with flows.worker():
        handle = await start_invitation(
            flows.client,
            InvitationInput(invitation_id=inv.id, organization_name="Solo", activities=FAST_STEPS),
            flows.task_queue,
        )
        for _ in range(200):
            status = await handle.query(InvitationWorkflow.status)
            if status.emails_sent:
                break
            await asyncio.sleep(0.05)
        await revoke_invitation(flows.client, inv.id, "test over")
    assert status.emails_sent == 1
    assert len(flows.mailer.sent_to("solo@example.com")) == 1
    assert flows.app.get_invitation(inv.id, ALL_ORGANIZATIONS).email_status == "sent"


async def test_the_token_never_appears_in_any_workflow_history(flows: Flows) -> None:
    async with flows.worker():
        spec = bootstrap_input("secret-one", invitees=1, domain=False)
        boot = await start_bootstrap(flows.client, spec, flows.task_queue)
        inv_id = (await boot.result()).invitation_ids[0]
        token = token_of(flows, inv_id)
        await resend_invitation(flows.client, inv_id)
        new_token = token_of(flows, inv_id)
        await accept_invitation(flows.client, inv_id, new_token, "user-9")
        child = invitation_handle(flows.client, inv_id)
        await child.result()
    for handle in (boot, child):
        history = await handle.fetch_history()
        dumped = plain_text(history.to_json())
        assert len(dumped) > 1000  # the history is really there
        # Nor the proof of a token that was never used to accept (it would still work).
        for secret in (token, new_token, accept_proof(token)):
            assert secret not in dumped
            assert flows.app.tokens.token_hash(inv_id, 1) not in dumped


async def test_an_update_delivered_with_the_start_finds_the_input(flows: Flows) -> None:
    """Update-with-start puts the update in the first activation, before run() starts."""
    org = flows.app.register_organization(name="Early", slug="early-one", org_type="partner")
    inv = flows.app.invite(
        organization_id=org.id, email="early@example.com", role="viewer",
        first_name="Early", last_name="Bird",
    )  # fmt: skip
    spec = InvitationInput(
        invitation_id=inv.id, organization_name="Early", already_sent=True, activities=FAST_STEPS
    )
    async with flows.worker():
        start = WithStartWorkflowOperation(
            InvitationWorkflow.run,
            spec,
            id=invitation_workflow_id(inv.id),
            task_queue=flows.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        status = await flows.client.execute_update_with_start_workflow(
            InvitationWorkflow.resend, start_workflow_operation=start
        )
        await revoke_invitation(flows.client, inv.id, "test over")
    assert status.token_generation == 2
    assert flows.app.get_invitation(inv.id, ALL_ORGANIZATIONS).token_generation == 2
