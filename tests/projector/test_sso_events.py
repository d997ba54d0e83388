"""Single sign-on connections and e-mail domains have no read model yet: the projector
applies their events without a row (the audit counts them) and moves on, live and in a
rebuild alike, as for domain claims."""

from __future__ import annotations

from a4c_domain import EmailDomainClaim, EmailDomainVerification, SSOConnection
from tests.projector.conftest import Store, assert_complete


def test_sso_and_email_domain_events_are_applied_without_a_row(any_store: Store) -> None:
    app = any_store.app
    org = app.register_organization(name="Acme", slug="acme", org_type="provider")
    app.configure_sso(
        organization_id=org.id,
        issuer="https://idp.acme.example",
        client_id="a4c",
        client_secret="k1:SEALED",
    )
    app.record_sso_test(
        organization_id=org.id, generation=1, subject="s-1", email_domain="acme.example"
    )
    app.activate_sso(organization_id=org.id, generation=1)
    app.configure_sso(
        organization_id=org.id,
        issuer="https://idp2.acme.example",
        client_id="a4c",
        client_secret="k1:SEALED-2",
    )
    app.abandon_sso_configuration(organization_id=org.id, generation=2, reason="timed out")
    app.deactivate_sso(organization_id=org.id, reason="off")
    app.request_email_domain_verification(organization_id=org.id, domain="acme.example")
    app.verify_email_domain(organization_id=org.id, domain="acme.example")
    topics = [n.topic for n in app.recorder.select_notifications(start=1, limit=100)]
    for aggregate in (SSOConnection, EmailDomainVerification, EmailDomainClaim):
        assert any(f":{aggregate.__qualname__}." in topic for topic in topics), aggregate
    projector = any_store.projector(batch_size=2)
    try:
        projector.catch_up()
    finally:
        projector.close()
    assert_complete(any_store)
    assert set(any_store.live_rows()["organizations"]) == {str(org.id)}
