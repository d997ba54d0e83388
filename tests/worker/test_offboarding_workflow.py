"""OrganizationOffboardingWorkflow on the real dev server (and real BIND for DNS).

Happy path, joining, the grace period's cancel leaving everything untouched, refusals,
a retried activity duplicating nothing, another organization's record kept, and the
offboarded mail to each admin (through a real SMTP server, aiosmtpd) never failing it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from tests.servers.bind import BindServer
from tests.servers.smtp import SMTPTestServer
from tests.support import wait_for_async
from tests.worker.flows import (
    FAST_STEPS,
    FaultyApp,
    Flows,
    bootstrap_input,
    smtp_mailer,
    sqlite_app,
    wait_for_step,
)
from tests.worker.test_dns_tenancy import TARGET, served

from a4c_domain import ALL_ORGANIZATIONS, Organization, organization_id
from a4c_domain.errors import OrganizationConflict, StoreUnavailable
from a4c_worker.client import (
    invitation_handle,
    start_bootstrap,
    start_offboarding,
)
from a4c_worker.providers.errors import PermanentProviderError
from a4c_worker.providers.templates import organization_message_id
from a4c_worker.search_attributes import ORGANIZATION_ID, ORGANIZATION_SLUG
from a4c_worker.workflows.invitation import InvitationWorkflow
from a4c_worker.workflows.models import OffboardingInput, offboarding_workflow_id
from a4c_worker.workflows.offboarding import OrganizationOffboardingWorkflow


def offboarding(slug: str, **extra: object) -> OffboardingInput:
    fields: dict[str, object] = {
        "slug": slug,
        "reason": "contract ended",
        "admins": [f"admin@{slug}.example.com"],
        "activities": FAST_STEPS,
    }
    fields.update(extra)
    return OffboardingInput.model_validate(fields)


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


async def onboarded(flows: Flows, slug: str, **extra: Any) -> list[uuid.UUID]:
    handle = await start_bootstrap(flows.client, bootstrap_input(slug, **extra), flows.task_queue)
    return (await handle.result()).invitation_ids


async def test_offboarding_revokes_ends_invitation_workflows_removes_dns_and_offboards(
    flows: Flows,
) -> None:
    async with flows.worker():
        invitations = await onboarded(flows, "leaver")
        org = flows.app.get_organization(organization_id("leaver"))
        assert org.fqdn is not None and flows.dns.lookup(org.fqdn) is not None
        handle = await start_offboarding(flows.client, offboarding("leaver"), flows.task_queue)
        result = await handle.result()
        progress = await handle.query(OrganizationOffboardingWorkflow.progress)
        # Each invitation's workflow ended at once (told by the signal), revoked.
        for inv_id in invitations:
            status = await invitation_handle(flows.client, inv_id).result()
            assert status.state == "revoked"
        described = await handle.describe()

    gone = flows.app.get_organization(org.id)
    assert (gone.status, gone.deactivation_reason, gone.dns_status) == (
        "offboarded",
        "contract ended",
        "removed",
    )
    assert flows.dns.lookup(org.fqdn) is None
    for inv_id in invitations:
        inv = flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
        assert (inv.status, inv.revoke_reason) == ("revoked", "organization offboarded")
    assert sorted(result.revoked_invitation_ids) == sorted(invitations)
    assert result.dns_removed == org.fqdn
    assert progress.state == "completed" and progress.errors == []
    assert progress.completed_steps == [
        "grace_period",
        "revoke_invitations",
        "remove_dns",
        "offboard",
        "mail_admins",
    ]
    assert flows.event_names(org.id)[-3:] == [
        "Organization.DNSRemoved",
        "Organization.Offboarded",
        "Organization.EmailSent",  # the one admin told
    ]
    assert described.id == offboarding_workflow_id("leaver") == "org-offboard-leaver"
    attributes = described.typed_search_attributes
    assert attributes.get(ORGANIZATION_SLUG) == "leaver"
    assert attributes.get(ORGANIZATION_ID) == str(org.id)


async def test_a_second_start_joins_the_first_and_after_it_completed_is_refused(
    flows: Flows,
) -> None:
    async with flows.worker():
        await onboarded(flows, "twice", invitees=1, domain=False)
        first = await start_offboarding(
            flows.client, offboarding("twice", grace_period_seconds=1), flows.task_queue
        )
        second = await start_offboarding(
            flows.client, offboarding("twice", grace_period_seconds=1), flows.task_queue
        )
        assert second.result_run_id == first.result_run_id  # joined, not a second run
        await first.result()
        before = flows.events()
        with pytest.raises(WorkflowAlreadyStartedError):
            await start_offboarding(flows.client, offboarding("twice"), flows.task_queue)
    assert flows.events() == before
    assert flows.event_counts()["Organization.Offboarded"] == 1


async def test_a_cancel_inside_the_grace_period_leaves_everything_untouched(
    flows: Flows,
) -> None:
    async with flows.worker():
        invitations = await onboarded(flows, "stayer")
        before = flows.events()
        handle = await start_offboarding(
            flows.client, offboarding("stayer", grace_period_seconds=600), flows.task_queue
        )

        async def waiting() -> bool:
            progress = await handle.query(OrganizationOffboardingWorkflow.progress)
            return progress.current_step == "grace_period"

        await wait_for_async(waiting, what="the grace period")
        progress = await handle.execute_update(
            OrganizationOffboardingWorkflow.request_cancel, "customer stays"
        )
        assert (progress.state, progress.cancel_reason) == ("cancelled", "customer stays")
        assert progress.grace_ends_at is not None
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        for inv_id in invitations:
            state = await invitation_handle(flows.client, inv_id).query(InvitationWorkflow.status)
            assert state.state == "pending"
        # Cancelled is not offboarded: a later request may run again.
        again = await start_offboarding(flows.client, offboarding("stayer"), flows.task_queue)
        assert again.result_run_id != handle.result_run_id
        await again.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "OffboardingCancelled"
    assert flows.events()[: len(before)] == before
    # Nothing happened during the cancelled run: the next events are the second run's.
    first_after = flows.events()[len(before)]
    assert first_after[3]["workflow_id"] == "org-offboard-stayer"
    assert first_after[3]["run_id"] == again.result_run_id


@pytest.mark.parametrize("case", ["missing", "compensated"])
async def test_refused_before_anything_changes(flows: Flows, case: str) -> None:
    slug = f"refused-{case}"
    if case == "compensated":
        org = flows.app.register_organization(name="Gone", slug=slug, org_type="provider")
        flows.app.deactivate(organization_id=org.id, reason="bootstrap failed", failed_step="x")
    before = flows.events()
    async with flows.worker():
        handle = await start_offboarding(flows.client, offboarding(slug), flows.task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        progress = await handle.query(OrganizationOffboardingWorkflow.progress)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "OffboardingRefused"
    expected = "OrganizationNotFound" if case == "missing" else "OrganizationInactive"
    assert [e.error_type for e in progress.errors] == [expected]
    assert flows.events() == before


async def test_a_retried_activity_duplicates_nothing(tmp_path: Path, flows: Flows) -> None:
    """Each command commits, then its activity attempt fails as if the connection was
    lost before the answer: Temporal retries it, and the retry lands as a no-op."""
    faulty = sqlite_app(tmp_path, FaultyApp)
    lost = StoreUnavailable("connection lost after commit")
    for command in ("offboard", "revoke_invitation", "remove_dns"):
        faulty.fail(command, lost, after_commit=True)
    try:
        async with flows.worker(faulty):
            invitations = await onboarded(flows, "retried", invitees=1)
            handle = await start_offboarding(flows.client, offboarding("retried"), flows.task_queue)
            progress = await handle.query(OrganizationOffboardingWorkflow.progress)
            await handle.result()
        assert faulty.calls["offboard"] == 2
        assert faulty.calls["revoke_invitation"] == 2
        assert faulty.calls["remove_dns"] == 2
    finally:
        faulty.close()
    assert progress.errors == []
    counts = flows.event_counts()
    assert counts["Organization.Offboarded"] == 1
    assert counts["Organization.DNSRemoved"] == 1
    assert counts["Invitation.Revoked"] == len(invitations) == 1


async def test_offboarding_never_removes_another_organizations_record(
    tmp_path: Path, temporal_client: Client, task_queue: str, bind_server: BindServer
) -> None:
    """An organization from before domain claims (0.2.0) configured the name another one
    now holds: offboarding it removes nothing under that name."""
    app = sqlite_app(tmp_path)
    flows = Flows(app=app, client=temporal_client, task_queue=task_queue)
    flows.use_bind(bind_server)
    fqdn = f"keep-{uuid.uuid4().hex[:8]}.{bind_server.zone.rstrip('.')}"
    try:
        async with flows.worker():
            spec = bootstrap_input("keeper", invitees=0).model_copy(update={"domain": fqdn})
            await (await start_bootstrap(flows.client, spec, flows.task_queue)).result()
            kept = app.get_organization(organization_id("keeper"))
            assert served(bind_server, fqdn) == [TARGET]
            old = Organization(
                name="Old", slug="old-goner", org_type="provider", parent_id=None, tags=[],
                domain=fqdn,
            )  # fmt: skip
            old.configure_dns(fqdn, flows.links.dns_target, kept.dns_record_id or "")
            app.save(old)
            handle = await start_offboarding(
                flows.client, offboarding("old-goner"), flows.task_queue
            )
            await handle.result()
        assert served(bind_server, fqdn) == [TARGET]
        assert app.get_organization(kept.id).model_dump(exclude={"position"}) == kept.model_dump(
            exclude={"position"}
        )
        assert app.get_organization(organization_id("old-goner")).status == "offboarded"
    finally:
        app.close()


async def test_a_step_that_fails_does_not_stop_the_offboarding_and_a_new_run_finishes_it(
    tmp_path: Path, flows: Flows
) -> None:
    """Past the grace period the steps roll forward: the DNS removal fails for good, the
    organization is offboarded all the same, the run fails naming the step; the next
    run (allowed after a failed one) does what is left and nothing twice."""
    faulty = sqlite_app(tmp_path, FaultyApp)
    faulty.fail("remove_dns", OrganizationConflict("injected: the provider said no", {}))
    try:
        async with flows.worker(faulty):
            await onboarded(flows, "half", invitees=1)
            fqdn = flows.app.get_organization(organization_id("half")).fqdn or ""
            first = await start_offboarding(flows.client, offboarding("half"), flows.task_queue)
            with pytest.raises(WorkflowFailureError) as failed:
                await first.result()
            progress = await first.query(OrganizationOffboardingWorkflow.progress)
            half = flows.app.get_organization(organization_id("half"))
            # Half done: the record was deleted at the provider, its removal not recorded.
            assert (half.status, half.dns_status) == ("offboarded", "verified")
            assert flows.dns.lookup(fqdn) is None
            second = await start_offboarding(flows.client, offboarding("half"), flows.task_queue)
            assert second.result_run_id != first.result_run_id
            result = await second.result()
    finally:
        faulty.close()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "OffboardingFailed"
    assert [(e.step, e.error_type) for e in progress.errors] == [
        ("remove_dns", "OrganizationConflict")
    ]
    assert progress.completed_steps == [
        "grace_period",
        "revoke_invitations",
        "offboard",
        "mail_admins",
    ]
    assert result.dns_removed == fqdn
    assert flows.dns.lookup(fqdn) is None
    counts = flows.event_counts()
    assert (counts["Organization.Offboarded"], counts["Organization.DNSRemoved"]) == (1, 1)
    assert counts["Invitation.Revoked"] == 1


async def test_offboarding_during_a_bootstrap_ends_it_and_the_bootstrap_undoes_nothing_more(
    flows: Flows,
) -> None:
    """The bootstrap waits for DNS propagation when the offboarding runs: its next step
    is refused, and its compensation finds the organization ended (a no-op)."""
    async with flows.worker():
        spec = bootstrap_input("racing", invitees=1, propagation_wait_seconds=3)
        bootstrap = await start_bootstrap(flows.client, spec, flows.task_queue)
        await wait_for_step(bootstrap, "propagation_wait")
        offboarded = await start_offboarding(flows.client, offboarding("racing"), flows.task_queue)
        await offboarded.result()
        with pytest.raises(WorkflowFailureError):
            await bootstrap.result()
    org = flows.app.get_organization(organization_id("racing"))
    assert (org.status, org.deactivation_reason, org.dns_status) == (
        "offboarded",
        "contract ended",
        "removed",
    )
    assert org.fqdn is not None and flows.dns.lookup(org.fqdn) is None
    counts = flows.event_counts()
    assert (counts["Organization.Offboarded"], counts["Organization.Deactivated"]) == (1, 0)


def offboarded_mails(flows: Flows, org_id: uuid.UUID) -> list[str]:
    """The message ids of the offboarded mails recorded on the organization."""
    return [
        e.message_id
        for e in flows.app.events.get(org_id)
        if isinstance(e, Organization.EmailSent) and e.kind == "offboarded"
    ]


async def test_each_admin_gets_one_offboarded_mail_even_when_its_activity_is_retried(
    tmp_path: Path, flows: Flows, smtp_server: SMTPTestServer
) -> None:
    """The first record of a sent mail commits, then its attempt fails (the answer lost):
    the retry finds it recorded and sends nothing again."""
    slug = f"mailed-{uuid.uuid4().hex[:8]}"
    admins = [f"ada-{slug}@example.com", f"grace-{slug}@example.com"]
    flows.mailer = smtp_mailer(smtp_server)  # type: ignore[assignment]  # the real one
    faulty = sqlite_app(tmp_path, FaultyApp)
    lost = StoreUnavailable("connection lost after commit")
    faulty.fail("record_organization_email_sent", lost, after_commit=True)
    try:
        async with flows.worker(faulty):
            await onboarded(flows, slug, invitees=0, domain=False)
            spec = offboarding(slug, admins=admins, reason="contract ended <b>now</b>")
            handle = await start_offboarding(flows.client, spec, flows.task_queue)
            await handle.result()
            progress = await handle.query(OrganizationOffboardingWorkflow.progress)
            history = await handle.fetch_history()
        # Two sends recorded; one attempt failed after its record and was retried: the
        # retry found the record and neither sent nor recorded again.
        assert faulty.calls["record_organization_email_sent"] == 2
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert max(attempts) == 2
    finally:
        faulty.close()
    assert (progress.state, progress.errors) == ("completed", [])
    assert progress.completed_steps[-2:] == ["offboard", "mail_admins"]
    org_id = organization_id(slug)
    expected = []
    for admin in admins:
        (mail,) = smtp_server.messages_to(admin)
        message_id = organization_message_id("offboarded", org_id, admin, flows.links.mail_domain)
        assert str(mail["Message-ID"]).strip() == message_id
        assert mail["Subject"] == f"Org {slug} was offboarded"
        text = str(mail.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        html = str(mail.get_body(("html",)).get_content())  # type: ignore[union-attr]
        assert "Why: contract ended <b>now</b>" in text
        assert "contract ended &lt;b&gt;now&lt;/b&gt;" in html and "<b>" not in html
        expected.append(message_id)
    assert sorted(offboarded_mails(flows, org_id)) == sorted(expected)


async def test_an_offboarded_mail_refused_for_good_never_fails_the_offboarding(
    flows: Flows,
) -> None:
    slug = "mail-bounced"
    gone, kept = f"gone@{slug}.example.com", f"kept@{slug}.example.com"
    flows.mailer.fail_for(gone, PermanentProviderError("550 mailbox gone"))
    async with flows.worker():
        await onboarded(flows, slug, invitees=0, domain=False)
        handle = await start_offboarding(
            flows.client, offboarding(slug, admins=[gone, kept]), flows.task_queue
        )
        result = await handle.result()
        progress = await handle.query(OrganizationOffboardingWorkflow.progress)
    assert progress.state == "completed"
    assert [(e.step, e.error_type) for e in progress.errors] == [("mail_admins", "EmailNotSent")]
    assert gone not in progress.errors[0].message
    # Not every admin was told: the step is not complete, the offboarding is.
    assert result.completed_steps[-1] == "offboard" and "mail_admins" not in result.completed_steps
    assert flows.mailer.sent_to(gone) == []
    assert [m.subject for m in flows.mailer.sent_to(kept)] == [f"Org {slug} was offboarded"]
    assert len(offboarded_mails(flows, organization_id(slug))) == 1
    assert flows.app.get_organization(organization_id(slug)).status == "offboarded"
