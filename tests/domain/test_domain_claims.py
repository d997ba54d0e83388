"""A domain (fqdn) belongs to at most one organization (issue 9, item 2).

The claim is an aggregate whose id is derived from the normalised fqdn, saved in the
same atomic write as the event that takes the domain, so the store's uniqueness decides
a race. The second organization is refused with ``DomainTaken`` before any of its
events is stored; the owner repeating its own command stays a no-op.
"""

from __future__ import annotations

from typing import Any

import pytest

from a4c_domain import OnboardingApplication, Organization, organization_id
from a4c_domain.errors import DomainTaken, OrganizationNotFound
from tests.domain.racers import Step
from tests.domain.support import assert_noop, assert_refused, events, org_fields
from tests.domain.test_concurrency import pg_env, race
from tests.support import TOKEN_SECRET

__all__ = ["pg_env"]  # the racing schema fixture, shared with test_concurrency

ROUNDS = 8


def dns(fqdn: str, slug: str) -> dict[str, Any]:
    return {
        "organization_id": organization_id(slug),
        "fqdn": fqdn,
        "target": "lb.example.com",
        "record_id": f"r-{slug}",
    }


def test_a_second_organization_cannot_register_a_taken_domain(app: OnboardingApplication) -> None:
    app.register_organization(**org_fields(slug="victim", domain="shop.example.com"))

    refused = assert_refused(
        app,
        DomainTaken,
        app.register_organization,
        **org_fields(slug="attacker", domain="SHOP.example.com."),  # same name, other spelling
    )

    assert isinstance(refused, DomainTaken)
    assert refused.fqdn == "shop.example.com"
    assert "shop.example.com" in str(refused)
    assert "victim" not in str(refused)  # the owner is not revealed to the other tenant
    with pytest.raises(OrganizationNotFound):
        app.get_organization_by_slug("attacker")


def test_the_owner_registering_again_is_a_no_op(app: OnboardingApplication) -> None:
    fields = org_fields(slug="victim", domain="shop.example.com")
    first = app.register_organization(**fields)
    assert_noop(app, app.register_organization, first, **fields)


def test_configuring_dns_for_another_organizations_domain_is_refused(
    app: OnboardingApplication,
) -> None:
    app.register_organization(**org_fields(slug="victim", domain="shop.example.com"))
    app.register_organization(**org_fields(slug="attacker"))

    assert_refused(app, DomainTaken, app.configure_dns, **dns("shop.example.com", "attacker"))


def test_configuring_dns_claims_the_domain_and_repeating_it_is_a_no_op(
    app: OnboardingApplication,
) -> None:
    app.register_organization(**org_fields(slug="first"))
    configured = app.configure_dns(**dns("www.first.example.com", "first"))
    assert_noop(app, app.configure_dns, configured, **dns("www.first.example.com", "first"))

    assert_refused(
        app,
        DomainTaken,
        app.register_organization,
        **org_fields(slug="second", domain="www.first.example.com"),
    )


def test_the_claim_stays_with_the_organization_after_removal_and_deactivation(
    app: OnboardingApplication,
) -> None:
    owner = app.register_organization(**org_fields(slug="victim", domain="shop.example.com"))
    app.configure_dns(**dns("shop.example.com", "victim"))
    app.remove_dns(organization_id=owner.id)
    app.deactivate(organization_id=owner.id, reason="closed")

    assert app.domain_owner("shop.example.com") == owner.id
    assert_refused(
        app,
        DomainTaken,
        app.register_organization,
        **org_fields(slug="next", domain="shop.example.com"),
    )


def test_claims_are_saved_with_the_event_that_takes_the_domain(
    app: OnboardingApplication,
) -> None:
    view = app.register_organization(**org_fields(slug="victim", domain="shop.example.com"))
    stored = events(app)
    assert [type(e).__qualname__ for e in stored] == [
        "Organization.Registered",
        "DomainClaim.Claimed",
    ]
    assert stored[1].organization_id == view.id
    assert app.domain_owner("Shop.Example.COM.") == view.id
    assert app.domain_owner("other.example.com") is None


def test_organizations_racing_for_one_domain_exactly_one_wins(
    pg_env: dict[str, str],
) -> None:
    """Separate processes on PostgreSQL, in lockstep: one registration per domain wins."""
    plans: list[list[Step]] = [[], []]
    for i in range(ROUNDS):
        for who, plan in enumerate(plans):
            fields = org_fields(slug=f"r{i}-p{who}", domain=f"d{i}.example.com")
            plan.append(("register_organization", fields))
    first, second = race(pg_env, plans)
    for mine, theirs in zip(first[0], second[0], strict=True):
        kinds = sorted([mine[0], theirs[0]])
        assert kinds == ["DomainTaken", "ok"], (mine, theirs)
    app = OnboardingApplication({**pg_env, "A4C_TOKEN_SECRET": TOKEN_SECRET})
    try:
        registered = [e for e in events(app) if type(e).__qualname__ == "Organization.Registered"]
        assert len(registered) == ROUNDS  # the losers stored nothing
    finally:
        app.close()


def test_dns_removal_is_allowed_only_under_a_held_domain(app: OnboardingApplication) -> None:
    """The rule every DNS compensation follows (the worker's remove_dns, entities cleanup)."""
    holder = app.register_organization(**org_fields(slug="holder", domain="shop.example.com"))
    other = app.register_organization(**org_fields(slug="other"))
    old = Organization(
        name="Old",
        slug="old",
        org_type="provider",
        parent_id=None,
        tags=[],
        domain="old.example.com",
    )
    app.save(old)  # registered before 0.3.0: no claim

    assert app.dns_removal(holder.id, "SHOP.example.com.") == "own"
    assert app.dns_removal(other.id, "shop.example.com") == "not_own"
    assert app.dns_removal(old.id, "old.example.com") == "unclaimed"
    assert app.dns_removal(other.id, "old.example.com") == "not_own"  # never took it
    assert app.dns_removal(organization_id("nobody"), "shop.example.com") == "not_own"
