"""Upgrading to 0.3.0: organizations that took a domain before claims existed get one.

Before 0.3.0 an organization registered with a domain (or configured DNS for one)
without a ``DomainClaim``; such events are written here the way that release stored
them: the ``Organization`` aggregate saved through the application without a claim.
Until the backfill runs, another organization can take that domain; after it, the
oldest organization holds it and the attacker is refused. SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from a4c_domain import Cause, DomainClaim, OnboardingApplication, Organization, caused_by
from a4c_domain.base import DomainAggregate
from a4c_domain.claim_backfill import ClaimOutcome, ClaimSummary, backfill_domain_claims
from a4c_domain.errors import DomainTaken, InvalidCommand
from tests.domain.support import Store, assert_refused, notification_count, org_fields
from tests.support import TOKEN_SECRET

SHOP = "shop.example.com"


def old_organization(
    app: OnboardingApplication,
    slug: str,
    *,
    domain: str | None = None,
    configured: str | None = None,
    deactivated: bool = False,
) -> UUID:
    """An organization as 0.2.0 stored it: its events, and no claim on its domain."""
    with caused_by(Cause(actor="a4c 0.2.0")):
        org = Organization(
            name=f"Org {slug}",
            slug=slug,
            org_type="provider",
            parent_id=None,
            tags=[],
            domain=domain,
        )
        if configured is not None:
            org.configure_dns(configured, "edge.example.com", f"r-{slug}")
        if deactivated:
            org.deactivate("bootstrap failed", "verify_dns")
        app.save(org)
    return org.id


def configure_old(app: OnboardingApplication, org_id: UUID, fqdn: str) -> None:
    """DNS configured later, still without a claim (0.2.0)."""
    org: Organization = app.repository.get(org_id)
    org.configure_dns(fqdn, "edge.example.com", f"r-{org.slug}")
    app.save(org)


def run(app: OnboardingApplication, **options: Any) -> tuple[list[ClaimOutcome], ClaimSummary]:
    outcomes = list(backfill_domain_claims(app, **options))
    return outcomes, ClaimSummary.of(outcomes)


def test_after_the_backfill_an_old_organizations_domain_is_refused_to_another(
    app: OnboardingApplication,
) -> None:
    old = old_organization(app, "old", domain=SHOP, configured=SHOP)

    outcomes, summary = run(app)

    assert_refused(
        app, DomainTaken, app.register_organization, **org_fields(slug="attacker", domain=SHOP)
    )
    assert app.domain_owner(SHOP) == old
    [claimed] = outcomes
    assert (claimed.outcome, claimed.fqdn, claimed.organization_id, claimed.slug) == (
        "claimed",
        SHOP,
        old,
        "old",
    )
    assert summary.claimed == 1 and summary.conflicts == 0


def test_a_domain_taken_only_by_configuring_dns_is_claimed(app: OnboardingApplication) -> None:
    old = old_organization(app, "old")
    configure_old(app, old, "Shop.Example.com.")  # stored as given; claimed normalised

    run(app)

    assert app.domain_owner(SHOP) == old
    with pytest.raises(DomainTaken):
        app.register_organization(**org_fields(slug="attacker", domain=SHOP))


def test_a_deactivated_old_organization_keeps_its_domain(app: OnboardingApplication) -> None:
    """A claim outlives deactivation (as for organizations registered since 0.3.0)."""
    old = old_organization(app, "gone", domain=SHOP, configured=SHOP, deactivated=True)

    run(app)

    assert app.domain_owner(SHOP) == old


def test_a_second_run_claims_nothing(app: OnboardingApplication) -> None:
    first = old_organization(app, "first", domain=SHOP, configured=SHOP)
    second = old_organization(app, "second", domain="two.example.com")
    app.register_organization(**org_fields(slug="new", domain="new.example.com"))
    app.register_organization(**org_fields(slug="bare"))  # no domain: nothing to claim
    _, summary = run(app)
    assert (summary.claimed, summary.already_held) == (2, 1)
    before = notification_count(app)

    outcomes, again = run(app)

    assert notification_count(app) == before
    assert {o.outcome for o in outcomes} == {"already_held"}
    assert (again.claimed, again.already_held, again.conflicts) == (0, 3, 0)
    assert app.domain_owner(SHOP) == first
    assert app.domain_owner("two.example.com") == second


def test_two_old_organizations_sharing_a_domain_the_earliest_keeps_it(
    app: OnboardingApplication,
) -> None:
    earliest = old_organization(app, "earliest", domain=SHOP)
    later = old_organization(app, "later", domain=SHOP, configured=SHOP)

    outcomes, summary = run(app)

    assert app.domain_owner(SHOP) == earliest
    conflict = next(o for o in outcomes if o.outcome == "conflict")
    assert (conflict.organization_id, conflict.slug, conflict.fqdn) == (later, "later", SHOP)
    assert (conflict.owner_id, conflict.owner_slug) == (earliest, "earliest")
    assert (summary.claimed, summary.conflicts) == (1, 1)
    # The conflict is reported again on the next run: it is not resolved by running.
    _, again = run(app)
    assert (again.claimed, again.conflicts) == (0, 1)


def test_the_first_event_taking_the_domain_decides_not_the_registration(
    app: OnboardingApplication,
) -> None:
    """Registered first without a domain, configured DNS for it second: the other
    organization, which configured it first, keeps it."""
    registered_first = old_organization(app, "registered-first")
    configured_first = old_organization(app, "configured-first")
    configure_old(app, configured_first, SHOP)
    configure_old(app, registered_first, SHOP)

    _, summary = run(app)

    assert app.domain_owner(SHOP) == configured_first
    assert (summary.claimed, summary.conflicts) == (1, 1)


def test_a_dry_run_writes_nothing_and_reports_what_it_would_claim(
    app: OnboardingApplication,
) -> None:
    earliest = old_organization(app, "earliest", domain=SHOP)
    later = old_organization(app, "later", domain=SHOP)
    before = notification_count(app)

    outcomes, summary = run(app, dry_run=True)

    assert notification_count(app) == before
    assert app.domain_owner(SHOP) is None
    assert [(o.outcome, o.organization_id) for o in outcomes] == [
        ("would_claim", earliest),
        ("conflict", later),
    ]
    assert (summary.would_claim, summary.claimed, summary.conflicts) == (1, 0, 1)


def test_a_stored_domain_that_is_not_a_host_name_is_reported_and_skipped(
    app: OnboardingApplication,
) -> None:
    bad = old_organization(app, "bad", domain="not a host")
    good = old_organization(app, "good", domain=SHOP)

    outcomes, summary = run(app)

    [invalid] = [o for o in outcomes if o.outcome == "invalid"]
    assert (invalid.organization_id, invalid.fqdn) == (bad, "not a host")
    assert invalid.reason is not None and "host name" in invalid.reason
    assert app.domain_owner(SHOP) == good
    assert (summary.claimed, summary.invalid) == (1, 1)


def test_the_log_is_read_in_pages(app: OnboardingApplication) -> None:
    """Never the whole store at once: every read asks for at most one page."""
    owners = {
        f"d{i}.example.com": old_organization(app, f"org{i}", domain=f"d{i}.example.com")
        for i in range(5)
    }
    limits: list[int] = []
    select = app.recorder.select_notifications

    def spy(*args: Any, **kwargs: Any) -> Any:
        limits.append(kwargs["limit"])
        return select(*args, **kwargs)

    app.recorder.select_notifications = spy  # type: ignore[method-assign]  # a spy on pages

    _, summary = run(app, page_size=2)

    assert summary.claimed == 5
    assert limits and set(limits) == {2} and len(limits) >= 3
    assert {fqdn: app.domain_owner(fqdn) for fqdn in owners} == owners


def test_a_claim_lost_to_a_racing_registration_is_reported_and_the_run_goes_on(
    store: Store,
) -> None:
    """A new registration takes the domain between the backfill's look and its save:
    the store's uniqueness refuses the backfill's claim, which is reported, and the
    next organization is still claimed."""
    app = store.open()
    old = old_organization(app, "old", domain=SHOP)
    other = old_organization(app, "other", domain="other.example.com")
    rival = store.open()

    class Raced(OnboardingApplication):
        raced = False

        def domain_owner(self, fqdn: str) -> UUID | None:
            owner = super().domain_owner(fqdn)
            if fqdn == SHOP and not self.raced:  # the rival registers right after the look
                self.raced = True
                rival.register_organization(**org_fields(slug="newcomer", domain=SHOP))
            return owner

    backfill_app = Raced({**store.env, "A4C_TOKEN_SECRET": TOKEN_SECRET})
    store.apps.append(backfill_app)

    outcomes, summary = run(backfill_app)

    newcomer = rival.get_organization_by_slug("newcomer").id
    assert app.domain_owner(SHOP) == newcomer
    [lost] = [o for o in outcomes if o.outcome == "conflict"]
    assert (lost.organization_id, lost.owner_id, lost.owner_slug) == (old, newcomer, "newcomer")
    assert app.domain_owner("other.example.com") == other
    assert (summary.claimed, summary.conflicts) == (1, 1)


def test_a_claim_saved_by_the_backfill_is_a_plain_domain_claim(
    app: OnboardingApplication,
) -> None:
    """What the backfill writes is what a registration writes: one ``Claimed`` event,
    caused by the operator's command."""
    old = old_organization(app, "old", domain=SHOP)

    with caused_by(Cause(actor="a4c-worker claim-domains")):
        run(app)

    claim: object = app.repository.get(DomainClaim.create_id(SHOP))
    assert isinstance(claim, DomainClaim)
    assert (claim.fqdn, claim.organization_id, claim.version) == (SHOP, old, 1)
    [event] = app.repository.event_store.get(claim.id)
    assert isinstance(event, DomainAggregate.Event)
    assert event.metadata["actor"] == "a4c-worker claim-domains"


def test_a_page_size_below_one_is_refused(app: OnboardingApplication) -> None:
    with pytest.raises(InvalidCommand) as refused:
        run(app, page_size=0)
    assert refused.value.errors == [{"field": "page_size", "message": "must be at least 1"}]
