"""OrganizationBootstrapWorkflow on the real dev server: happy path and progress."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from tests.worker.flows import Flows, bootstrap_input, sqlite_app

from a4c_domain import organization_id
from a4c_worker.client import start_bootstrap
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
        inv = flows.app.get_invitation(inv_id)
        assert (inv.status, inv.email_status) == ("pending", "sent")
        assert [m.message_id for m in flows.mailer.sent_to(inv.email)] == [inv.message_id]
    assert flows.event_names(org_id) == [
        "Organization.Registered",
        "Organization.DNSConfigured",
        "Organization.DNSVerified",
        "Organization.Activated",
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
        "send_invitations",
        "activate",
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
