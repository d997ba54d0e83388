"""E-mail domains an organization proves it owns: a challenge to publish (the same when
asked again), verification that claims the domain in the same save, one owner per
domain (a race between two organizations has one winner, the loser stores nothing), and
asking is not owning (another organization's request blocks no one)."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID, uuid4

import pytest

from a4c_domain import (
    EmailDomainClaim,
    OnboardingApplication,
    email_domain_claim_id,
    email_domain_verification_id,
)
from a4c_domain.email_domains import challenge_record_name, challenge_record_value
from a4c_domain.errors import (
    EmailDomainNotFound,
    EmailDomainTaken,
    InvalidCommand,
    OrganizationInactive,
    OrganizationNotFound,
)
from tests.domain.support import Store, assert_noop, assert_refused, events, org_fields


@pytest.fixture
def acme(app: OnboardingApplication) -> UUID:
    return app.register_organization(**org_fields()).id


@pytest.fixture
def other(app: OnboardingApplication) -> UUID:
    return app.register_organization(**org_fields(name="Other Inc", slug="other")).id


def test_a_request_gives_the_record_to_publish_and_again_the_same(
    app: OnboardingApplication, acme: UUID
) -> None:
    asked = app.request_email_domain_verification(organization_id=acme, domain="Acme.Example.")
    assert asked.id == email_domain_verification_id(acme, "acme.example")
    assert (asked.domain, asked.status, asked.organization_id) == ("acme.example", "pending", acme)
    assert len(asked.challenge) >= 32 and asked.challenge.isascii()
    assert (
        asked.record_name == "_a4c-challenge.acme.example" == challenge_record_name("acme.example")
    )
    assert asked.record_value == "a4c-domain-verification=" + asked.challenge
    assert asked.record_value == challenge_record_value(asked.challenge)
    assert_noop(
        app,
        app.request_email_domain_verification,
        asked,
        organization_id=acme,
        domain="acme.example",
    )
    assert app.get_email_domain_owner("acme.example") is None  # asking is not owning


def test_verifying_claims_the_domain_in_the_same_save(
    app: OnboardingApplication, acme: UUID
) -> None:
    asked = app.request_email_domain_verification(organization_id=acme, domain="acme.example")
    verified = app.verify_email_domain(organization_id=acme, domain="acme.example")
    assert verified.status == "verified" and verified.challenge == asked.challenge
    kinds = [type(e).__qualname__ for e in events(app)[-2:]]
    assert sorted(kinds) == ["EmailDomainClaim.Claimed", "EmailDomainVerification.Verified"]
    claim: object = app.repository.get(email_domain_claim_id("acme.example"))
    assert isinstance(claim, EmailDomainClaim) and claim.organization_id == acme
    assert app.get_email_domain_owner("acme.example") == acme
    assert_noop(app, app.verify_email_domain, verified, organization_id=acme, domain="acme.example")
    assert app.get_email_domain(acme, "acme.example") == verified.model_copy(
        update={"position": None}
    )


def test_one_owner_per_domain(app: OnboardingApplication, acme: UUID, other: UUID) -> None:
    app.request_email_domain_verification(organization_id=acme, domain="acme.example")
    # Another organization's pending request blocks no one...
    app.request_email_domain_verification(organization_id=other, domain="acme.example")
    app.verify_email_domain(organization_id=acme, domain="acme.example")
    # ...but once a domain is owned, no other organization can ask for it or verify it.
    error = assert_refused(
        app, EmailDomainTaken, app.verify_email_domain, organization_id=other, domain="acme.example"
    )
    assert str(error) == "e-mail domain acme.example is already taken by another organization"
    assert str(acme) not in str(error)
    assert_refused(
        app,
        EmailDomainTaken,
        app.request_email_domain_verification,
        organization_id=other,
        domain="acme.example",
    )
    assert app.get_email_domain(other, "acme.example").status == "pending"
    assert app.get_email_domain_owner("acme.example") == acme


def test_two_organizations_verifying_at_once_have_one_winner(store: Store) -> None:
    setup = store.open()
    orgs = [
        setup.register_organization(**org_fields(name=f"Racer {n}", slug=f"racer-{n}")).id
        for n in range(2)
    ]
    for org in orgs:
        setup.request_email_domain_verification(organization_id=org, domain="contested.example")
    apps = [store.open() for _ in orgs]
    barrier = threading.Barrier(len(orgs))
    outcomes: dict[UUID, Any] = {}

    def verify(app: OnboardingApplication, org: UUID) -> None:
        barrier.wait()
        try:
            outcomes[org] = app.verify_email_domain(organization_id=org, domain="contested.example")
        except EmailDomainTaken as taken:
            outcomes[org] = taken

    threads = [threading.Thread(target=verify, args=pair) for pair in zip(apps, orgs, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [org for org, outcome in outcomes.items() if not isinstance(outcome, Exception)]
    assert len(winners) == 1 and len(outcomes) == 2
    (loser,) = set(orgs) - set(winners)
    assert setup.get_email_domain_owner("contested.example") == winners[0]
    assert setup.get_email_domain(loser, "contested.example").status == "pending"


def test_verifying_what_was_never_asked_is_not_found(
    app: OnboardingApplication, acme: UUID
) -> None:
    assert_refused(
        app,
        EmailDomainNotFound,
        app.verify_email_domain,
        organization_id=acme,
        domain="acme.example",
    )
    with pytest.raises(EmailDomainNotFound):
        app.get_email_domain(acme, "acme.example")


def test_a_deactivated_organization_verifies_nothing(
    app: OnboardingApplication, acme: UUID
) -> None:
    app.request_email_domain_verification(organization_id=acme, domain="acme.example")
    app.deactivate(organization_id=acme, reason="offboarded")
    assert_refused(
        app,
        OrganizationInactive,
        app.verify_email_domain,
        organization_id=acme,
        domain="acme.example",
    )
    assert_refused(
        app,
        OrganizationInactive,
        app.request_email_domain_verification,
        organization_id=acme,
        domain="other.example",
    )


@pytest.mark.parametrize(
    "domain", ["example", "ada@acme.example", "acme..example", "-a.example", ""]
)
def test_a_domain_must_be_a_host_name(app: OnboardingApplication, acme: UUID, domain: str) -> None:
    error = assert_refused(
        app,
        InvalidCommand,
        app.request_email_domain_verification,
        organization_id=acme,
        domain=domain,
    )
    assert isinstance(error, InvalidCommand) and error.fields == ["domain"]


def test_an_unknown_organization_asks_for_nothing(app: OnboardingApplication) -> None:
    assert_refused(
        app,
        OrganizationNotFound,
        app.request_email_domain_verification,
        organization_id=uuid4(),
        domain="acme.example",
    )
