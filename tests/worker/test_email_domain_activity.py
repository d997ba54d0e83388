"""The e-mail domain activity, in Temporal's ActivityEnvironment, against the real test
BIND as the domain's DNS and a real event store: not published yet is a retryable
failure (back-off waits), published verifies and claims the domain, a domain another
organization owns is refused for good, and a verified domain is not looked up again."""

from __future__ import annotations

import uuid

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from tests.servers.bind import BindServer
from tests.worker.flows import LINKS

from a4c_domain import OnboardingApplication
from a4c_domain.errors import EmailDomainTaken
from a4c_worker.activities import EMAIL_DOMAIN_NOT_PUBLISHED, OnboardingActivities
from a4c_worker.contracts import EmailDomainInput
from a4c_worker.providers.dns import (
    InMemoryDNSProvider,
    InMemoryDNSVerifier,
    InMemoryTXTLookup,
    Nameserver,
    ResolverTXTLookup,
)
from a4c_worker.providers.email import InMemoryMailer


def activities(
    app: OnboardingApplication, txt: ResolverTXTLookup | InMemoryTXTLookup
) -> OnboardingActivities:
    dns = InMemoryDNSProvider()
    return OnboardingActivities(
        app, dns, InMemoryDNSVerifier(dns), InMemoryMailer(), LINKS, txt=txt
    )


def mail_domain(bind: BindServer) -> str:
    """A customer's e-mail domain whose DNS is the test BIND (inside its zone)."""
    return bind.fqdn(f"mail-{uuid.uuid4().hex[:8]}").rstrip(".")


async def test_the_domain_is_verified_once_its_challenge_is_published(
    app: OnboardingApplication, bind_server: BindServer
) -> None:
    org = app.register_organization(name="Acme", slug="acme", org_type="provider").id
    domain = mail_domain(bind_server)
    request = app.request_email_domain_verification(organization_id=org, domain=domain)
    lookup = ResolverTXTLookup([Nameserver(host=bind_server.host, port=bind_server.port)])
    acts = activities(app, lookup)
    check = EmailDomainInput(organization_id=org, domain=domain)

    with pytest.raises(ApplicationError) as waiting:
        await ActivityEnvironment().run(acts.verify_email_domain, check)
    assert waiting.value.type == EMAIL_DOMAIN_NOT_PUBLISHED and not waiting.value.non_retryable
    assert request.challenge not in str(waiting.value)
    # Something else at the name, or the challenge of another request: still not it.
    bind_server.add_record(request.record_name + ".", "TXT", '"a4c-domain-verification=other"')
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(acts.verify_email_domain, check)
    assert app.get_email_domain_owner(domain) is None

    bind_server.add_record(request.record_name + ".", "TXT", f'"{request.record_value}"')
    outcome = await ActivityEnvironment().run(acts.verify_email_domain, check)
    assert (outcome.status, outcome.written, outcome.domain) == ("verified", True, domain)
    assert app.get_email_domain_owner(domain) == org
    # Verified already: converges without asking DNS (the lookup would find nothing here).
    again = await ActivityEnvironment().run(
        activities(app, InMemoryTXTLookup()).verify_email_domain, check
    )
    assert (again.status, again.written) == ("verified", False)


async def test_a_domain_another_organization_owns_is_refused_for_good(
    app: OnboardingApplication,
) -> None:
    first = app.register_organization(name="First", slug="first", org_type="provider").id
    second = app.register_organization(name="Second", slug="second", org_type="provider").id
    for org in (first, second):
        app.request_email_domain_verification(organization_id=org, domain="shared.example")
    txt = InMemoryTXTLookup()
    for org in (first, second):
        view = app.get_email_domain(org, "shared.example")
        txt.records.setdefault(view.record_name, []).append(view.record_value)
    acts = activities(app, txt)
    won = await ActivityEnvironment().run(
        acts.verify_email_domain, EmailDomainInput(organization_id=first, domain="shared.example")
    )
    assert won.status == "verified"
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            acts.verify_email_domain,
            EmailDomainInput(organization_id=second, domain="shared.example"),
        )
    assert refused.value.type == EmailDomainTaken.__name__ and refused.value.non_retryable
    assert str(first) not in str(refused.value)
