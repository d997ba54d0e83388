"""The sso_connections and email_domains read models: each step of a connection's life
and of an e-mail domain's verification shows in its row (never a client secret, not
even sealed), live and in a rebuild alike; a domain's claim writes no row of its own."""

from __future__ import annotations

from uuid import UUID

from a4c_domain import EmailDomainClaim, EmailDomainVerification, SSOConnection
from a4c_projector.queries import ReadModel
from a4c_projector.schema import SSO_CONNECTIONS
from tests.projector.conftest import Store, assert_complete, catch_up_past_gaps

SEALED = "k1:SEALED-SECRET"


def caught_up(store: Store) -> ReadModel:
    projector = store.projector(batch_size=2)  # folds and splits a life across batches
    try:
        catch_up_past_gaps(projector)
    finally:
        projector.close()
    return ReadModel(store.location)


def test_a_connection_row_follows_its_configurations(any_store: Store) -> None:
    app = any_store.app
    org = app.register_organization(name="Acme", slug="acme", org_type="provider").id
    app.configure_sso(
        organization_id=org,
        issuer="https://idp.acme.example",
        client_id="a4c",
        client_secret=SEALED,
    )
    with caught_up(any_store) as reads:
        row = reads.sso_connection(org)
    assert row is not None and row.id == SSOConnection.create_id(org)
    assert (row.state, row.status, row.issuer, row.client_id) == (
        "pending",
        "none",
        "https://idp.acme.example",
        "a4c",
    )
    assert (row.pending_generation, row.pending_tested, row.active_issuer) == (1, False, None)

    app.record_sso_test(
        organization_id=org, generation=1, subject="s-1", email_domain="acme.example"
    )
    with caught_up(any_store) as reads:
        row = reads.sso_connection(org)
    assert row is not None and row.pending_tested and row.state == "pending"

    app.activate_sso(organization_id=org, generation=1)
    with caught_up(any_store) as reads:
        row = reads.sso_connection(org)
    assert row is not None
    assert (row.state, row.active_issuer, row.active_client_id, row.active_generation) == (
        "active",
        "https://idp.acme.example",
        "a4c",
        1,
    )
    assert row.activated_at is not None and row.pending_generation is None

    # A new one tried: pending, while the first stays in force; abandoned, it goes.
    app.configure_sso(
        organization_id=org, issuer="https://idp2.acme.example", client_id="b", client_secret="k1:2"
    )
    with caught_up(any_store) as reads:
        row = reads.sso_connection(org)
    assert row is not None
    assert (row.state, row.status, row.issuer, row.active_issuer, row.generation) == (
        "pending",
        "active",
        "https://idp2.acme.example",
        "https://idp.acme.example",
        2,
    )
    app.abandon_sso_configuration(organization_id=org, generation=2, reason="timed out")
    with caught_up(any_store) as reads:
        row = reads.sso_connection(org)
    assert row is not None
    assert (row.state, row.issuer, row.abandon_reason) == (
        "active",
        "https://idp.acme.example",
        "timed out",
    )

    app.deactivate_sso(organization_id=org, reason="off")
    with caught_up(any_store) as reads:
        row = reads.sso_connection(org)
        assert reads.sso_connection(UUID(int=1)) is None
    assert row is not None
    assert (row.state, row.active_issuer, row.deactivation_reason) == ("none", None, "off")
    assert_complete(any_store)
    # No secret in any column, sealed or not.
    assert not any("secret" in c.name for c in SSO_CONNECTIONS.columns)
    assert SEALED not in repr(any_store.live_rows()["sso_connections"])


def test_email_domain_rows_show_the_challenge_and_who_verified(any_store: Store) -> None:
    app = any_store.app
    acme = app.register_organization(name="Acme", slug="acme", org_type="provider").id
    other = app.register_organization(name="Other", slug="other", org_type="provider").id
    asked = app.request_email_domain_verification(organization_id=acme, domain="acme.example")
    app.request_email_domain_verification(organization_id=other, domain="acme.example")
    app.request_email_domain_verification(organization_id=acme, domain="b.example")
    with caught_up(any_store) as reads:
        rows = reads.email_domains(acme)
        assert reads.email_domain_owner("acme.example") is None  # asking is not owning
    assert [(r.domain, r.status) for r in rows] == [
        ("acme.example", "pending"),
        ("b.example", "pending"),
    ]
    assert rows[0].challenge == asked.challenge and rows[0].verified_at is None

    app.verify_email_domain(organization_id=acme, domain="acme.example")
    with caught_up(any_store) as reads:
        row = reads.email_domain(acme, "ACME.example")
        assert reads.email_domain_owner("acme.example") == acme
        assert reads.email_domain_owner("b.example") is None
        assert [r.status for r in reads.email_domains(other)] == ["pending"]
    assert row is not None and row.status == "verified" and row.verified_at is not None
    assert row.id == EmailDomainVerification.create_id(acme, "acme.example")
    topics = [n.topic for n in app.recorder.select_notifications(start=1, limit=100)]
    assert any(f":{EmailDomainClaim.__qualname__}." in t for t in topics)
    assert_complete(any_store)
