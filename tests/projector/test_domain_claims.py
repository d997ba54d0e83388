"""A domain claim is an event of its own aggregate with no read-model row: the projector
applies it (the audit counts it) and moves on, live and in a rebuild alike."""

from __future__ import annotations

from a4c_domain import DomainClaim
from tests.projector.conftest import Store, assert_complete


def test_claims_are_applied_without_a_row_and_audit_clean(any_store: Store) -> None:
    app = any_store.app
    org_ids = set()
    for n in range(3):
        org = app.register_organization(
            name=f"Org {n}", slug=f"org-{n}", org_type="provider", domain=f"o{n}.example.com"
        )
        app.configure_dns(
            organization_id=org.id, fqdn=f"o{n}.example.com", target="lb.example.com",
            record_id=f"r{n}",
        )  # fmt: skip
        org_ids.add(str(org.id))
    claims = [
        n
        for n in app.recorder.select_notifications(start=1, limit=100)
        if n.topic.endswith(DomainClaim.Claimed.__qualname__)
    ]
    assert len(claims) == 3
    projector = any_store.projector(batch_size=2)  # claims at batch edges too
    try:
        projector.catch_up()
    finally:
        projector.close()
    assert_complete(any_store)
    assert set(any_store.live_rows()["organizations"]) == org_ids  # no row for a claim
