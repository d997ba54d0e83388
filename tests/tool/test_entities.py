"""Tagged-entity listing and cleanup over a real event store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, Organization
from a4c_domain.claim_backfill import backfill_domain_claims
from a4c_tool.entities import cleanup, find_tagged, render
from a4c_worker.providers.dns import InMemoryDNSProvider


async def seed(app: OnboardingApplication, dns: InMemoryDNSProvider) -> None:
    for slug, tags in (("tagged-one", ["dev"]), ("tagged-two", ["dev", "x"]), ("kept", ["prod"])):
        fqdn = f"{slug}.orgs.test"  # one domain per organization: a domain has one owner
        org = app.register_organization(
            name=slug.title(), slug=slug, org_type="provider", tags=tags, domain=fqdn
        )
        record_id = await dns.ensure_record(fqdn, "ingress.orgs.test")
        app.configure_dns(
            organization_id=org.id, fqdn=fqdn, target="ingress.orgs.test", record_id=record_id
        )
        for who in ("ann", "bob"):
            app.invite(
                organization_id=org.id,
                email=f"{who}@{slug}.example",
                role="member",
                first_name=who,
                last_name="Doe",
            )
    # One invitation already accepted: cleanup must leave it as it is.
    kept_inv = find_tagged(app, "dev")[0].invitations[0]
    app.accept_invitation(
        organization_id=ALL_ORGANIZATIONS,
        invitation_id=kept_inv.id,
        token=app.invitation_token(kept_inv.id, ALL_ORGANIZATIONS),
        user_id="u-ann",
    )


def head(app: OnboardingApplication) -> int:
    return app.recorder.max_notification_id() or 0


async def test_listing_finds_only_tagged_entities_in_every_format(
    app: OnboardingApplication,
) -> None:
    await seed(app, InMemoryDNSProvider())
    found = find_tagged(app, "dev")
    assert sorted(e.organization.slug for e in found) == ["tagged-one", "tagged-two"]
    assert all(len(e.invitations) == 2 for e in found)

    rows = json.loads(render(found, "json"))
    assert len(rows) == 6 and {r["kind"] for r in rows} == {"organization", "invitation"}
    parsed = list(csv.DictReader(io.StringIO(render(found, "csv"))))
    assert parsed == rows
    table = render(found, "table").splitlines()
    assert table[0].split()[:2] == ["kind", "id"] and set(table[1]) <= {"-", " "}
    assert len(table) == 8  # header, rule, six rows
    assert find_tagged(app, "no-such-tag") == []


async def test_dry_run_changes_nothing(app: OnboardingApplication) -> None:
    dns = InMemoryDNSProvider()
    await seed(app, dns)
    before, records = head(app), dict(dns.records)
    report = await cleanup(app, dns, "dev")
    assert report.dry_run and report.failures == []
    # 2 orgs: 3 pending invitations (one accepted), 2 DNS removals, 2 deactivations.
    assert len(report.actions) == 7
    assert all(a.startswith("would ") for a in report.actions)
    assert head(app) == before and dns.records == records


async def test_cleanup_compensates_tagged_and_leaves_the_rest(
    app: OnboardingApplication,
) -> None:
    dns = InMemoryDNSProvider()
    await seed(app, dns)
    report = await cleanup(app, dns, "dev", dry_run=False)
    assert report.failures == [] and len(report.actions) == 7

    for entry in find_tagged(app, "dev"):
        assert entry.organization.status == "deactivated"
        assert entry.organization.dns_status == "removed"
        assert {i.status for i in entry.invitations} <= {"revoked", "accepted"}
    assert sorted(name for name, _ in dns.records) == ["kept.orgs.test."]
    kept = app.get_organization_by_slug("kept")
    assert kept.status == "registered" and kept.dns_status == "configured"
    assert {i.status for i in find_tagged(app, "prod")[0].invitations} == {"pending"}

    # Running it again finds nothing left to do and writes nothing.
    before = head(app)
    again = await cleanup(app, dns, "dev", dry_run=False)
    assert again.actions == [] and head(app) == before


async def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(
    app: OnboardingApplication,
) -> None:
    # E-mail local parts may start with '=', '+' or '-': the listing shows addresses.
    formulas = ["=1+cmd@example.com", "+1@example.com", "-2+3@example.com"]
    org = app.register_organization(name="F", slug="formulas", org_type="provider", tags=["dev"])
    for email in formulas:
        app.invite(
            organization_id=org.id, email=email, role="member", first_name="A", last_name="B"
        )
    parsed = list(csv.DictReader(io.StringIO(render(find_tagged(app, "dev"), "csv"))))
    names = sorted(r["name"] for r in parsed if r["kind"] == "invitation")
    assert names == sorted("'" + f for f in formulas)  # shown as text, never evaluated
    assert sorted(r["name"] for r in json.loads(render(find_tagged(app, "dev"), "json"))) == (
        sorted(["formulas", *formulas])  # JSON is data: unchanged
    )


async def test_cleanup_leaves_an_unclaimed_record_and_says_how_to_fix_it(
    app: OnboardingApplication,
) -> None:
    """An organization that took its domain before 0.3.0 holds no claim: its record is
    left (nothing proves it is its own), its state is not changed, and the report names
    the backfill; after the backfill the same cleanup removes it."""
    dns = InMemoryDNSProvider()
    fqdn = "old.orgs.test"
    record_id = await dns.ensure_record(fqdn, "ingress.orgs.test")
    old = Organization(
        name="Old", slug="old", org_type="provider", parent_id=None, tags=["dev"], domain=fqdn
    )
    old.configure_dns(fqdn, "ingress.orgs.test", record_id)
    app.save(old)  # as 0.2.0 left it: no claim

    report = await cleanup(app, dns, "dev", dry_run=False)

    [failure] = [f for f in report.failures if f.startswith(f"remove DNS {fqdn}")]
    assert "holds no claim" in failure and "a4c-worker claim-domains" in failure
    assert dns.lookup(fqdn) is not None
    assert app.get_organization(old.id).dns_status == "configured"

    assert [o.outcome for o in backfill_domain_claims(app)] == ["claimed"]
    again = await cleanup(app, dns, "dev", dry_run=False)
    assert f"remove DNS {fqdn}" in again.actions and not again.failures
    assert dns.lookup(fqdn) is None
    assert app.get_organization(old.id).dns_status == "removed"
