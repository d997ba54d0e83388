"""OrganizationBootstrapWorkflow on the real dev server: happy path and progress."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from tests.worker.flows import Flows, bootstrap_input, sqlite_app

from a4c_domain import ALL_ORGANIZATIONS, organization_id
from a4c_worker.client import start_bootstrap
from a4c_worker.providers.templates import organization_message_id
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


async def test_happy_path_activates_the_organization_and_mails_every_invitee(flows: Flows) -> None:
    spec = bootstrap_input("happy-one", invitees=2)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        result = await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)

    org_id = organization_id("happy-one")
    assert result.organization_id == org_id
    org = flows.app.get_organization(org_id)
    assert (org.status, org.dns_status, org.fqdn) == (
        "active",
        "verified",
        f"happy-one.{flows.links.zone}",
    )
    assert flows.dns.lookup(org.fqdn or "") is not None
    assert sorted(result.emails_sent) == [
        "person0@happy-one.example.com",
        "person1@happy-one.example.com",
    ]
    assert result.emails_failed == []
    for inv_id in result.invitation_ids:
        inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
        assert (inv.status, inv.email_status) == ("pending", "sent")
        invitation_mail = flows.mailer.sent_to(inv.email)[0]
        assert invitation_mail.message_id == inv.message_id
    # The admin invitee (person0) is welcomed once the bootstrap is past the point of no
    # return; the member is not.
    admin, member = "person0@happy-one.example.com", "person1@happy-one.example.com"
    welcome_id = organization_message_id("welcome", org_id, admin, flows.links.mail_domain)
    assert [m.message_id for m in flows.mailer.sent_to(admin)][1:] == [welcome_id]
    assert len(flows.mailer.sent_to(member)) == 1
    assert flows.event_names(org_id) == [
        "Organization.Registered",
        "Organization.DNSConfigured",
        "Organization.DNSVerified",
        "Organization.InvitationIssued",
        "Organization.InvitationIssued",
        "Organization.Activated",
        "Organization.EmailSent",
    ]
    assert flows.event_counts()["Invitation.Invited"] == 2
    assert flows.event_counts()["Invitation.EmailSent"] == 2
    assert progress.state == "completed"
    assert progress.completed_steps == [
        "register",
        "configure_dns",
        "propagation_wait",
        "verify_dns",
        "record_dns_verified",
        "issue_invitations",
        "activate",
        "send_invitations",
        "start_invitation_workflows",
    ]
    assert result.invitation_workflow_ids == [f"invitation-{i}" for i in result.invitation_ids]


async def test_every_event_records_the_activity_that_caused_it(flows: Flows) -> None:
    async with flows.worker():
        handle = await start_bootstrap(flows.client, bootstrap_input("cause-one"), flows.task_queue)
        await handle.result()
    for name, _, _, metadata in flows.events():
        assert metadata["workflow_id"] == "org-bootstrap-cause-one", name
        assert metadata["run_id"] == handle.result_run_id
        assert metadata["activity_type"] and int(metadata["attempt"]) >= 1
    registered = next(m for n, _, _, m in flows.events() if n == "Organization.Registered")
    assert registered["activity_type"] == "register_organization"


async def test_bad_input_is_refused_by_the_starter_naming_the_fields(flows: Flows) -> None:
    fields = bootstrap_input("fine-slug").model_dump()
    fields.update(slug="Not A Label", invitees=[{"email": "nope", "role": "owner"}])
    with pytest.raises(ValidationError) as refused:
        await start_bootstrap(flows.client, fields, flows.task_queue)
    locations = {err["loc"][0] for err in refused.value.errors()}
    assert locations == {"slug", "invitees"}
    with pytest.raises(RPCError, match="not found"):
        await flows.client.get_workflow_handle("org-bootstrap-Not A Label").describe()
    assert flows.events() == []


async def test_bad_input_that_bypasses_the_starter_fails_the_workflow_before_any_event(
    flows: Flows,
) -> None:
    raw = {"name": "", "slug": "bad--slug", "org_type": "reseller"}
    async with flows.worker():
        handle = await flows.client.start_workflow(
            "OrganizationBootstrapWorkflow",
            raw,
            id="org-bootstrap-raw-bad",
            task_queue=flows.task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    # Failed for good (not a workflow task retried forever), naming each bad field.
    assert isinstance(cause, ApplicationError) and cause.type == "ValidationError"
    assert "name" in str(cause) and "org_type" in str(cause)
    assert flows.events() == []


async def test_an_organization_without_a_domain_skips_the_dns_steps(flows: Flows) -> None:
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input("no-dns", invitees=0, domain=False), flows.task_queue
        )
        result = await handle.result()
    assert result.completed_steps == [
        "register",
        "issue_invitations",
        "activate",
        "send_invitations",
        "start_invitation_workflows",
    ]
    assert flows.dns.operations == []
    assert flows.app.get_organization(result.organization_id).status == "active"
