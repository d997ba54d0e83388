"""Activities run in Temporal's ActivityEnvironment against a real SQLite event store."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from uuid import uuid4

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from tests.worker.flows import LINKS

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, organization_id
from a4c_domain.base import DomainAggregate
from a4c_domain.errors import (
    ConcurrencyError,
    InvalidCommand,
    OrganizationConflict,
)
from a4c_domain.ids import invitation_id
from a4c_worker.activities import OnboardingActivities, to_application_error
from a4c_worker.contracts import (
    AcceptInput,
    DeactivateInput,
    DNSRecordInput,
    Invitee,
    IssueInvitationInput,
    RegisterOrganizationInput,
    RevokeInput,
    SendMailInput,
    accept_proof,
)
from a4c_worker.providers.dns import InMemoryDNSProvider, InMemoryDNSVerifier, InMemoryTXTLookup
from a4c_worker.providers.email import InMemoryMailer
from a4c_worker.providers.errors import PermanentProviderError, TransientProviderError


@pytest.fixture
def mailer() -> InMemoryMailer:
    return InMemoryMailer()


@pytest.fixture
def acts(app: OnboardingApplication, mailer: InMemoryMailer) -> OnboardingActivities:
    dns = InMemoryDNSProvider()
    return OnboardingActivities(
        app, dns, InMemoryDNSVerifier(dns), mailer, LINKS, txt=InMemoryTXTLookup()
    )


def env(attempt: int = 1) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(environment.info, attempt=attempt, workflow_id="wf-test")
    return environment


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ConcurrencyError("raced"), True),
        (TransientProviderError("451"), True),
        (PermanentProviderError("550"), False),
        (OrganizationConflict("taken", {"name": ("a", "b")}), False),
    ],
)
def test_errors_map_to_retry_decisions_by_class(error: Exception, retryable: bool) -> None:
    mapped = to_application_error(error)  # type: ignore[arg-type]  # also non-A4C errors
    assert mapped.type == type(error).__name__
    assert mapped.non_retryable is not retryable


def test_invalid_command_carries_the_field_errors() -> None:
    mapped = to_application_error(InvalidCommand("Invite", [{"field": "email", "message": "bad"}]))
    assert mapped.non_retryable and mapped.details == ([{"field": "email", "message": "bad"}],)


async def registered(acts: OnboardingActivities, slug: str = "acts-one") -> None:
    await env().run(
        acts.register_organization,
        RegisterOrganizationInput(name="Acts", slug=slug, org_type="provider"),
    )


async def invited(acts: OnboardingActivities, slug: str = "acts-one") -> IssueInvitationInput:
    issue = IssueInvitationInput(
        organization_id=organization_id(slug),
        invitee=Invitee(email="a@example.com", role="member", first_name="A", last_name="B"),
        expires_at=acts.app.clock() + timedelta(days=1),
    )
    await env().run(acts.issue_invitation, issue)
    return issue


async def test_events_carry_the_activity_coordinates(acts: OnboardingActivities) -> None:
    await env(attempt=3).run(
        acts.register_organization,
        RegisterOrganizationInput(name="Acts", slug="acts-meta", org_type="provider"),
    )
    [notification] = acts.app.recorder.select_notifications(start=1, limit=10)
    event = acts.app.mapper.to_domain_event(notification)
    assert isinstance(event, DomainAggregate.Event)
    assert event.metadata["workflow_id"] == "wf-test"
    assert event.metadata["attempt"] == "3"
    assert event.metadata["activity_type"] == "unknown"  # ActivityEnvironment's default


async def test_a_domain_outside_the_zone_is_refused_before_any_dns_call(
    acts: OnboardingActivities,
) -> None:
    await registered(acts)
    with pytest.raises(ApplicationError) as refused:
        await env().run(
            acts.configure_dns,
            DNSRecordInput(organization_id=organization_id("acts-one"), fqdn="acts.other.test"),
        )
    assert refused.value.type == "DomainOutsideZone" and refused.value.non_retryable
    assert isinstance(acts.dns, InMemoryDNSProvider)
    assert acts.dns.operations == []


async def test_remove_dns_never_deletes_a_record_under_another_organizations_domain(
    acts: OnboardingActivities,
) -> None:
    """The compensation of an organization that does not hold the domain (refused, or
    registered before claims existed) leaves the holder's record alone."""
    fqdn = "shop.orgs.a4c.test"
    await env().run(
        acts.register_organization,
        RegisterOrganizationInput(name="Owner", slug="owner", org_type="provider", domain=fqdn),
    )
    owner = organization_id("owner")
    await env().run(acts.configure_dns, DNSRecordInput(organization_id=owner, fqdn=fqdn))
    await env().run(
        acts.register_organization,
        RegisterOrganizationInput(name="Other", slug="other", org_type="provider"),
    )

    outcome = await env().run(
        acts.remove_dns, DNSRecordInput(organization_id=organization_id("other"), fqdn=fqdn)
    )

    assert isinstance(acts.dns, InMemoryDNSProvider)
    assert acts.dns.lookup(fqdn) is not None
    assert outcome.outcome == "nothing_to_do"
    assert acts.app.get_organization(owner).dns_status == "configured"


async def test_a_send_retried_after_it_was_recorded_does_not_mail_twice(
    acts: OnboardingActivities, mailer: InMemoryMailer
) -> None:
    await registered(acts)
    inv_id = (await env().run(acts.issue_invitation, await invited(acts))).invitation_id
    send = SendMailInput(invitation_id=inv_id, organization_name="Acts")
    first = await env().run(acts.send_invitation_email, send)
    again = await env(attempt=2).run(acts.send_invitation_email, send)
    assert first == again and first.sent
    assert len(mailer.sent) == 1
    token = acts.app.tokens.token(inv_id, 1)
    assert token in mailer.sent[0].text
    assert token not in first.model_dump_json()


async def test_a_refused_mail_is_recorded_and_returned_not_raised(
    acts: OnboardingActivities, mailer: InMemoryMailer
) -> None:
    await registered(acts)
    inv_id = (await env().run(acts.issue_invitation, await invited(acts))).invitation_id
    mailer.fail_for("a@example.com", PermanentProviderError("550 unknown user"))
    outcome = await env().run(
        acts.send_invitation_email, SendMailInput(invitation_id=inv_id, organization_name="Acts")
    )
    assert not outcome.sent and "550 unknown user" in (outcome.error or "")
    assert acts.app.get_invitation(inv_id, ALL_ORGANIZATIONS).email_status == "failed"


async def test_a_transient_mail_failure_raises_for_retry(
    acts: OnboardingActivities, mailer: InMemoryMailer
) -> None:
    await registered(acts)
    inv_id = (await env().run(acts.issue_invitation, await invited(acts))).invitation_id
    mailer.fail_for("a@example.com", TransientProviderError("451 later"), times=1)
    with pytest.raises(ApplicationError) as raised:
        await env().run(
            acts.send_invitation_email,
            SendMailInput(invitation_id=inv_id, organization_name="Acts"),
        )
    assert raised.value.type == "TransientProviderError" and not raised.value.non_retryable
    assert acts.app.get_invitation(inv_id, ALL_ORGANIZATIONS).email_status == "not_sent"


async def test_accept_checks_the_proof_of_the_current_token(acts: OnboardingActivities) -> None:
    await registered(acts)
    inv_id = (await env().run(acts.issue_invitation, await invited(acts))).invitation_id
    with pytest.raises(ApplicationError) as refused:
        await env().run(
            acts.accept_invitation,
            AcceptInput(invitation_id=inv_id, token_proof=accept_proof("guess"), user_id="u"),
        )
    assert refused.value.type == "InvalidToken" and refused.value.non_retryable
    token = acts.app.tokens.token(inv_id, 1)
    outcome = await env().run(
        acts.accept_invitation,
        AcceptInput(invitation_id=inv_id, token_proof=accept_proof(token), user_id="u"),
    )
    assert outcome.status == "accepted"


async def test_compensating_what_never_existed_is_nothing_to_do(
    acts: OnboardingActivities,
) -> None:
    missing = organization_id("never-registered")
    deactivated = await env().run(
        acts.deactivate_organization,
        DeactivateInput(organization_id=missing, reason="undo", failed_step="register"),
    )
    removed = await env().run(
        acts.remove_dns, DNSRecordInput(organization_id=missing, fqdn=f"x.{LINKS.zone}")
    )
    revoked = await env().run(
        acts.revoke_invitation, RevokeInput(invitation_id=uuid4(), reason="undo")
    )
    assert [deactivated.outcome, removed.outcome, revoked.outcome] == ["nothing_to_do"] * 3


def test_accept_urls_carry_the_token_as_a_query_parameter() -> None:
    assert LINKS.accept_url("a-b_c") == "http://localhost:8080/invitations/accept?token=a-b_c"
    with_query = LINKS.model_copy(update={"accept_url_base": "https://x.test/a?lang=en"})
    assert with_query.accept_url("t") == "https://x.test/a?lang=en&token=t"


async def test_ending_an_invitation_that_was_accepted_meanwhile_is_nothing_to_do(
    acts: OnboardingActivities,
) -> None:
    """Offboarding revokes what was pending when it looked; one accepted since is a
    member now: nothing to revoke, and no failure (no workflow is signalled)."""
    await registered(acts)
    issue = await invited(acts)
    inv_id = invitation_id(issue.organization_id, issue.invitee.email, 1)
    token = acts.app.tokens.token(inv_id, 1)
    acts.app.accept_invitation(
        organization_id=ALL_ORGANIZATIONS, invitation_id=inv_id, token=token, user_id="u-1"
    )
    outcome = await env().run(
        acts.end_invitation, RevokeInput(invitation_id=inv_id, reason="organization offboarded")
    )
    assert outcome.outcome == "nothing_to_do"
    assert outcome.detail == "invitation already accepted"
    assert acts.app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "accepted"
