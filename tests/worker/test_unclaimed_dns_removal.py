"""DNS removal for an organization that took its domain before claims existed (0.3.0).

Removal deletes only under a domain the organization holds, so the compensation of an
organization registered by 0.2.0 (no claim) deletes nothing. It must say so — in its
outcome and in the worker log, naming the command that fixes it — instead of reporting
the record removed; after ``a4c-worker claim-domains`` the same removal deletes it.
Real BIND (RFC 2136) and a real SQLite event store; the activity runs in Temporal's
ActivityEnvironment.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from temporalio.testing import ActivityEnvironment
from tests.servers.bind import BindServer
from tests.worker.flows import LINKS
from tests.worker.providers.test_rfc2136 import served_targets, settings_for

from a4c_domain import OnboardingApplication, Organization
from a4c_domain.claim_backfill import backfill_domain_claims
from a4c_worker.activities import OnboardingActivities
from a4c_worker.contracts import DNSRecordInput
from a4c_worker.providers.dns import (
    InMemoryTXTLookup,
    Nameserver,
    ResolverDNSVerifier,
    ResolverSettings,
    RFC2136DNSProvider,
)
from a4c_worker.providers.email import InMemoryMailer


@pytest.fixture
def acts(app: OnboardingApplication, bind_server: BindServer) -> OnboardingActivities:
    dns = RFC2136DNSProvider(settings_for(bind_server))
    links = LINKS.model_copy(update={"zone": bind_server.zone.rstrip(".")})
    verifier = ResolverDNSVerifier(
        ResolverSettings(nameservers=[Nameserver(host=bind_server.host, port=bind_server.port)])
    )
    return OnboardingActivities(
        app, dns, verifier, InMemoryMailer(), links, txt=InMemoryTXTLookup()
    )


async def old_organization_with_dns(acts: OnboardingActivities, bind: BindServer) -> str:
    """What 0.2.0 left: the record published, the organization configured, no claim."""
    fqdn = bind.fqdn(f"old-{uuid.uuid4().hex[:8]}").rstrip(".")
    record_id = await acts.dns.ensure_record(fqdn, acts.links.dns_target)
    org = Organization(
        name="Old", slug="old", org_type="provider", parent_id=None, tags=[], domain=fqdn
    )
    org.configure_dns(fqdn, acts.links.dns_target, record_id)
    acts.app.save(org)
    return fqdn


async def test_removal_without_a_claim_says_so_and_deletes_after_the_backfill(
    acts: OnboardingActivities, bind_server: BindServer, caplog: pytest.LogCaptureFixture
) -> None:
    fqdn = await old_organization_with_dns(acts, bind_server)
    old = Organization.create_id("old")
    published = served_targets(bind_server, fqdn)
    assert published == [f"{acts.links.dns_target}."]
    caplog.set_level(logging.WARNING)

    outcome = await ActivityEnvironment().run(
        acts.remove_dns, DNSRecordInput(organization_id=old, fqdn=fqdn)
    )

    # Left, and said so: the outcome and the log name the command that fixes it.
    assert served_targets(bind_server, fqdn) == published
    assert outcome.outcome == "nothing_to_do"
    assert outcome.detail is not None
    assert outcome.detail.startswith(f"{fqdn} not removed: the organization holds no claim")
    assert "a4c-worker claim-domains" in outcome.detail
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert fqdn in warning and "a4c-worker claim-domains" in warning
    # Its state still says what is published: the removal is not recorded.
    org = acts.app.get_organization(old)
    assert (org.dns_status, org.fqdn) == ("configured", fqdn)

    assert [o.outcome for o in backfill_domain_claims(acts.app)] == ["claimed"]
    removed = await ActivityEnvironment().run(
        acts.remove_dns, DNSRecordInput(organization_id=old, fqdn=fqdn)
    )

    assert (removed.outcome, removed.detail) == ("done", f"{fqdn} removed")
    assert served_targets(bind_server, fqdn) == []
    assert acts.app.get_organization(old).dns_status == "removed"
