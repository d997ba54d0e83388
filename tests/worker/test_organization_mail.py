"""The mails about an organization (welcome, provisioning failed, offboarded) through a
real SMTP server (aiosmtpd), the activity run in Temporal's ActivityEnvironment on a real
SQLite event store: one deterministic Message-ID per kind, organization and recipient,
not sent again by a retry once recorded, every value escaped in the HTML part, no
link, and no mail at all where no address is configured."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from tests.servers.smtp import SMTPTestServer
from tests.worker.flows import LINKS, smtp_mailer, sqlite_app

from a4c_domain import OnboardingApplication, Organization
from a4c_domain.errors import ConcurrencyError
from a4c_domain.views import OrganizationView
from a4c_worker.activities import OnboardingActivities
from a4c_worker.activities.organization_mail import (
    OrganizationMailInput,
    OrganizationMailOutcome,
)
from a4c_worker.metrics import WorkerMetrics
from a4c_worker.providers.dns import InMemoryDNSProvider, InMemoryDNSVerifier, InMemoryTXTLookup
from a4c_worker.providers.email import InMemoryMailer, Mailer
from a4c_worker.providers.errors import PermanentProviderError
from a4c_worker.providers.templates import organization_message_id

AT = datetime(2030, 5, 6, 7, 8, tzinfo=UTC)
LINKS_WITH_SUPPORT = LINKS.model_copy(
    update={"support_email": "help@a4c.example", "provisioning_failed_mail_to": "ops@a4c.example"}
)


class RecordFailsApp(OnboardingApplication):
    """The real application whose next records of a sent organization mail fail: after
    committing (the record is there, the attempt fails) or before it (nothing stored)."""

    name = OnboardingApplication.name  # eventsourcing's table name: the real one's
    fail_after_commit = 0
    fail_before_commit = 0

    def record_organization_email_sent(self, **fields: Any) -> OrganizationView:
        if self.fail_before_commit:
            self.fail_before_commit -= 1
            raise ConcurrencyError("lost the connection (before committing)")
        view = super().record_organization_email_sent(**fields)
        if self.fail_after_commit:
            self.fail_after_commit -= 1
            raise ConcurrencyError("lost the race (after committing)")
        return view


def activities(app: OnboardingApplication, mailer: Mailer) -> OnboardingActivities:
    dns = InMemoryDNSProvider()
    return OnboardingActivities(
        app, dns, InMemoryDNSVerifier(dns), mailer, LINKS_WITH_SUPPORT, txt=InMemoryTXTLookup()
    )


def attempt(number: int) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=number, workflow_id="wf")
    return environment


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app = sqlite_app(tmp_path, RecordFailsApp)
    yield app
    app.close()


def welcome(org_id: Any, to: str) -> OrganizationMailInput:
    return OrganizationMailInput(
        organization_id=org_id, kind="welcome", to=to, first_name="Ada", last_name="Lovelace",
        role="admin", occurred_at=AT,
    )  # fmt: skip


def body(message: Any, kind: str) -> str:
    return str(message.get_body((kind,)).get_content())


async def test_a_welcome_mail_is_sent_once_even_when_retried_after_the_record(
    app: RecordFailsApp, smtp_server: SMTPTestServer
) -> None:
    org = app.register_organization(
        name="Ada & Co", slug=f"w-{uuid4().hex[:8]}", org_type="provider"
    )
    to = f"Ada-{uuid4().hex[:8]}@Example.com"
    acts = activities(app, smtp_mailer(smtp_server))
    app.fail_after_commit = 1
    with pytest.raises(ApplicationError, match="ConcurrencyError"):  # retryable: retried
        await attempt(1).run(acts.send_organization_mail, welcome(org.id, to))
    again = await attempt(2).run(acts.send_organization_mail, welcome(org.id, to))
    expected = organization_message_id("welcome", org.id, to.lower(), LINKS.mail_domain)
    assert again == OrganizationMailOutcome(
        kind="welcome", result="already_sent", message_id=expected
    )
    (mail,) = smtp_server.messages_to(to.lower())
    assert str(mail["Message-ID"]).strip() == expected
    assert expected.startswith(f"<welcome.{org.id}.") and to.lower() not in expected
    assert mail["Subject"] == "Ada & Co is ready"
    text, html = body(mail, "plain"), body(mail, "html")
    assert "Hello Ada Lovelace," in text and "as admin" in text and "2030-05-06 07:08 UTC" in text
    assert "help@a4c.example" in text and "help@a4c.example" in html
    assert "Ada &amp; Co is ready" in html and "Ada & Co" not in html
    assert "http" not in text and "href" not in html  # no link: the invitation has it
    recorded = [e for e in app.events.get(org.id) if isinstance(e, Organization.EmailSent)]
    assert [(e.kind, e.message_id) for e in recorded] == [("welcome", expected)]


async def test_a_retry_between_the_send_and_the_record_sends_the_same_message_again(
    app: RecordFailsApp, smtp_server: SMTPTestServer
) -> None:
    """The one case a mail goes out twice: the same Message-ID both times, which is what
    receivers deduplicate on; and it is recorded once."""
    org = app.register_organization(name="Twice", slug=f"t-{uuid4().hex[:8]}", org_type="provider")
    to = f"twice-{uuid4().hex[:8]}@example.com"
    acts = activities(app, smtp_mailer(smtp_server))
    app.fail_before_commit = 1
    with pytest.raises(ApplicationError, match="ConcurrencyError"):  # retryable: retried
        await attempt(1).run(acts.send_organization_mail, welcome(org.id, to))
    outcome = await attempt(2).run(acts.send_organization_mail, welcome(org.id, to))
    assert outcome.result == "sent"
    ids = {str(m["Message-ID"]).strip() for m in smtp_server.messages_to(to)}
    assert ids == {outcome.message_id}
    assert [type(e).__name__ for e in app.events.get(org.id)] == ["Registered", "EmailSent"]


async def test_the_provisioning_failed_mail_names_step_undos_and_support_and_escapes(
    app: RecordFailsApp, smtp_server: SMTPTestServer
) -> None:
    org = app.register_organization(
        name="Smith & Sons", slug=f"f-{uuid4().hex[:8]}", org_type="partner"
    )
    app.deactivate(organization_id=org.id, reason="bootstrap failed", failed_step="verify_dns")
    acts = activities(app, smtp_mailer(smtp_server))
    failed = OrganizationMailInput(
        organization_id=org.id,
        kind="provisioning_failed",  # to None: the worker's PROVISIONING_FAILED_MAIL_TO
        failed_step="verify_dns",
        reason="DNSNotVisible: <b>not served</b> after 7 tries",
        undone=[
            {"step": "remove_dns", "outcome": "done"},
            {"step": "deactivate", "outcome": "done"},
        ],
        occurred_at=AT,
    )
    outcome = await attempt(1).run(acts.send_organization_mail, failed)
    assert outcome.result == "sent"
    (mail,) = [
        m for m in smtp_server.messages_to("ops@a4c.example") if org.slug in body(m, "plain")
    ]
    assert mail["Subject"] == "Onboarding of Smith & Sons stopped at verify_dns"
    text, html = body(mail, "plain"), body(mail, "html")
    for part in (text, html):
        assert "verify_dns" in part and "remove_dns: done" in part and "deactivate: done" in part
        assert "help@a4c.example" in part
    assert "Smith & Sons" in text and "<b>not served</b>" in text
    assert "Smith &amp; Sons" in html and "&lt;b&gt;not served&lt;/b&gt;" in html
    assert "Smith & Sons" not in html and "<b>" not in html


async def test_the_offboarded_mail_and_a_refusal_for_good(
    app: RecordFailsApp,
) -> None:
    org = app.register_organization(
        name="Gone Ltd", slug=f"o-{uuid4().hex[:8]}", org_type="provider"
    )
    mailer = InMemoryMailer()
    mailer.fail_for("gone@example.com", PermanentProviderError("550 no such user"))
    acts = activities(app, mailer)
    fields: dict[str, Any] = {
        "organization_id": org.id, "kind": "offboarded", "first_name": "Bo", "last_name": "Li",
        "reason": "contract ended", "occurred_at": AT,
    }  # fmt: skip
    refused = await attempt(1).run(
        acts.send_organization_mail, OrganizationMailInput(**fields, to="gone@example.com")
    )
    assert (refused.result, refused.sent) == ("refused", False)
    assert refused.error is not None and "550" in refused.error
    sent = await attempt(1).run(
        acts.send_organization_mail, OrganizationMailInput(**fields, to="bo@example.com")
    )
    assert sent.sent
    (mail,) = mailer.sent
    assert mail.subject == "Gone Ltd was offboarded"
    assert "contract ended" in mail.text and "Hello Bo Li," in mail.text
    assert "2030-05-06 07:08 UTC" in mail.text and "help@a4c.example" in mail.text


async def test_no_configured_address_no_provisioning_failed_mail(app: RecordFailsApp) -> None:
    org = app.register_organization(name="Quiet", slug=f"q-{uuid4().hex[:8]}", org_type="provider")
    mailer = InMemoryMailer()
    dns = InMemoryDNSProvider()
    acts = OnboardingActivities(
        app, dns, InMemoryDNSVerifier(dns), mailer, LINKS, txt=InMemoryTXTLookup()
    )
    outcome = await attempt(1).run(
        acts.send_organization_mail,
        OrganizationMailInput(organization_id=org.id, kind="provisioning_failed"),
    )
    assert outcome == OrganizationMailOutcome(kind="provisioning_failed", result="no_address")
    assert mailer.sent == []


def test_mails_are_counted_by_kind_and_result_only() -> None:
    metrics = WorkerMetrics()
    outcome = OrganizationMailOutcome(kind="welcome", result="sent", message_id="<m@x>")
    metrics.count_activity_result("send_organization_mail", [], outcome)
    metrics.count_activity_result("send_organization_mail", [], outcome)
    value = metrics.registry.get_sample_value(
        "a4c_worker_organization_mails_total", {"kind": "welcome", "result": "sent"}
    )
    assert value == 2
