"""The mails a bootstrap sends about its organization, on the real Temporal dev server:
the welcome mail to each admin or owner invitee once it completed (never failing it),
and one provisioning-failed mail once a failed or cancelled bootstrap is undone, to the
input's ``failure_mail_to`` or else the worker's configured address, through a real SMTP
server (aiosmtpd) where the test reads the mail itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from temporalio.client import Client, WorkflowFailureError
from tests.servers.smtp import SMTPTestServer
from tests.worker.flows import (
    FaultyApp,
    Flows,
    bootstrap_input,
    smtp_mailer,
    sqlite_app,
    wait_for_step,
)

from a4c_domain import Organization, organization_id
from a4c_domain.errors import DNSNotVerified, OrganizationConflict
from a4c_worker.client import start_bootstrap
from a4c_worker.providers.email import InMemoryMailer, OutgoingMail
from a4c_worker.providers.errors import PermanentProviderError
from a4c_worker.providers.templates import organization_message_id
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.bootstrap_progress import SEND_WELCOME_MAILS


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path, FaultyApp)
    flows = Flows(app=app, client=temporal_client, task_queue=task_queue)
    flows.links = flows.links.model_copy(update={"support_email": "help@a4c.example"})
    yield flows
    app.close()


def faulty(flows: Flows) -> FaultyApp:
    assert isinstance(flows.app, FaultyApp)
    return flows.app


def mails_of(flows: Flows, org_id: object) -> list[tuple[str, str]]:
    return [
        (e.kind, e.message_id)
        for e in flows.app.events.get(org_id)  # type: ignore[arg-type]
        if isinstance(e, Organization.EmailSent)
    ]


async def test_a_failed_bootstrap_mails_the_operators_what_was_undone(
    flows: Flows, smtp_server: SMTPTestServer
) -> None:
    slug = f"ops-{uuid4().hex[:8]}"
    ops = f"ops-{slug}@a4c.example"
    flows.mailer = smtp_mailer(smtp_server)  # type: ignore[assignment]  # the real one
    faulty(flows).fail("activate", DNSNotVerified("injected"))
    spec = bootstrap_input(slug, name="Smith & Sons", failure_mail_to=ops)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert (progress.state, progress.failed_step, progress.errors[1:]) == ("failed", "activate", [])
    (mail,) = smtp_server.messages_to(ops)
    org_id = organization_id(slug)
    expected = organization_message_id("provisioning_failed", org_id, ops, flows.links.mail_domain)
    assert str(mail["Message-ID"]).strip() == expected
    assert mail["Subject"] == "Onboarding of Smith & Sons stopped at activate"
    text = str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    html = str(mail.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert "stopped at the step activate" in text and "DNSNotVerified" in text
    assert "remove_dns: done" in text and "deactivate: done" in text
    assert f"revoke_invitation:person0@{slug}.example.com: done" in text
    assert "help@a4c.example" in text and "Smith &amp; Sons" in html
    # Nobody was welcomed: the organization was rolled back.
    for i in range(2):
        assert smtp_server.messages_to(f"person{i}@{slug}.example.com") == []
    assert mails_of(flows, org_id) == [("provisioning_failed", expected)]


async def test_a_cancelled_bootstrap_mails_the_worker_s_configured_address(flows: Flows) -> None:
    flows.links = flows.links.model_copy(update={"provisioning_failed_mail_to": "ops@a4c.example"})
    spec = bootstrap_input("ops-cancelled", propagation_wait_seconds=600)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        await wait_for_step(handle, "propagation_wait")
        await handle.signal(OrganizationBootstrapWorkflow.cancel, "customer changed their mind")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    (mail,) = flows.mailer.sent_to("ops@a4c.example")
    assert mail.subject == "Onboarding of Org ops-cancelled stopped at propagation_wait"
    assert "cancelled: customer changed their mind" in mail.text
    assert "remove_dns: done" in mail.text and "deactivate: done" in mail.text
    history = await handle.fetch_history()
    # The operators' address came from the worker's settings: never in the history.
    assert "ops@a4c.example" not in history.to_json()


async def test_a_bootstrap_that_registered_nothing_mails_nobody(flows: Flows) -> None:
    """Its slug may be another bootstrap's organization: nothing is said about it."""
    flows.links = flows.links.model_copy(update={"provisioning_failed_mail_to": "ops@a4c.example"})
    faulty(flows).fail("register_organization", OrganizationConflict("taken", {}))
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input("registered-nothing"), flows.task_queue
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert flows.mailer.sent == []


class RefusesWelcomes(InMemoryMailer):
    """Takes every invitation mail, refuses for good the welcome mails to ``address``."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    async def send(self, mail: OutgoingMail) -> str:
        if mail.to == self.address and (mail.message_id or "").startswith("<welcome."):
            raise PermanentProviderError("550 mailbox gone")
        return await super().send(mail)


async def test_a_welcome_mail_refused_for_good_never_fails_the_bootstrap(flows: Flows) -> None:
    slug = "welcome-bounced"
    admin = f"person0@{slug}.example.com"
    spec = bootstrap_input(slug, invitees=3)
    owner = spec.invitees[2].model_copy(update={"role": "owner"})
    spec = spec.model_copy(update={"invitees": [*spec.invitees[:2], owner]})
    flows.mailer = RefusesWelcomes(admin)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        result = await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert progress.state == "completed"
    welcome_errors = [e for e in progress.errors if e.step == SEND_WELCOME_MAILS]
    assert [e.error_type for e in welcome_errors] == ["EmailNotSent"]
    assert admin not in welcome_errors[0].message
    # The owner was welcomed, the admin only invited, the member only invited.
    owner_mails = flows.mailer.sent_to(owner.email)
    assert [m.subject for m in owner_mails][1:] == [f"Org {slug} is ready"]
    assert len(flows.mailer.sent_to(admin)) == 1
    assert len(flows.mailer.sent_to(f"person1@{slug}.example.com")) == 1
    assert [kind for kind, _ in mails_of(flows, result.organization_id)] == ["welcome"]


async def test_an_address_that_refused_its_invitation_is_not_welcomed(flows: Flows) -> None:
    """A second mail to an address that refused the first for good would be refused too:
    the refusal is on record (the invitation's), the welcome is not tried."""
    slug = "invite-bounced"
    admin = f"person0@{slug}.example.com"
    spec = bootstrap_input(slug, invitees=2)
    flows.mailer.fail_for(admin, PermanentProviderError("550 mailbox gone"))
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        result = await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert progress.state == "completed" and admin in result.emails_failed
    assert [e for e in progress.errors if e.step == SEND_WELCOME_MAILS] == []
    assert mails_of(flows, result.organization_id) == []


class SlowWelcomes(InMemoryMailer):
    """Welcome mails take a while: long enough to cancel the workflow during one."""

    def __init__(self) -> None:
        super().__init__()
        self.welcoming = asyncio.Event()

    async def send(self, mail: OutgoingMail) -> str:
        if (mail.message_id or "").startswith("<welcome."):
            self.welcoming.set()
            await asyncio.sleep(1.5)
        return await super().send(mail)


async def test_a_cancel_during_the_welcome_mails_undoes_nothing(flows: Flows) -> None:
    """Past the point of no return a Temporal cancellation ends the welcome mails only:
    the organization stays active, its invitations pending, and the bootstrap completes."""
    mailer = SlowWelcomes()
    flows.mailer = mailer
    slug = "welcome-cancelled"
    async with flows.worker():
        handle = await start_bootstrap(flows.client, bootstrap_input(slug), flows.task_queue)
        await asyncio.wait_for(mailer.welcoming.wait(), 30)
        await handle.cancel()
        result = await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert progress.state == "completed" and progress.compensations == []
    assert [e.error_type for e in progress.errors if e.step == SEND_WELCOME_MAILS] == ["Cancelled"]
    assert flows.app.get_organization(result.organization_id).status == "active"
