"""A library-only scenario: what the domain does, with no servers at all.

Registers an organization, invites two people, accepts one invitation, then prints the
event stream (with deterministic event IDs and causes) and the resulting state. Used by
``a4c demo`` and as the smallest example of driving :class:`OnboardingApplication`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from a4c_domain import Cause, OnboardingApplication, caused_by
from a4c_domain.base import DomainAggregate


def run_demo(data_dir: Path, token_secret: str, out: TextIO) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(data_dir / "demo-events.sqlite"),
    }
    app = OnboardingApplication(env, token_secret=token_secret)
    with caused_by(Cause(actor="a4c demo")):
        org = app.register_organization(
            name="Acme Widgets", slug="acme-demo", org_type="provider", tags=["demo"]
        )
        ada = app.invite(
            organization_id=org.id,
            email="ada@example.com",
            role="admin",
            first_name="Ada",
            last_name="Lovelace",
        )
        grace = app.invite(
            organization_id=org.id,
            email="grace@example.com",
            role="member",
            first_name="Grace",
            last_name="Hopper",
        )
        # The token is recomputed, used and dropped: only its hash is ever stored.
        app.accept_invitation(
            organization_id=org.id,
            invitation_id=ada.id,
            token=app.invitation_token(ada.id, org.id),
            user_id="user-ada",
        )
        app.activate(organization_id=org.id)

    print("event stream:", file=out)
    for notification in app.recorder.select_notifications(start=1, limit=10_000):
        event = app.mapper.to_domain_event(notification)
        assert isinstance(event, DomainAggregate.Event)
        print(
            f"  #{notification.id:<3} {type(event).__qualname__:<28} "
            f"v{event.originator_version} id={event.event_id} "
            f"cause={event.metadata.get('actor', '-')}",
            file=out,
        )
    org_view = app.get_organization(org.id)
    print(f"organization: {org_view.slug} status={org_view.status}", file=out)
    for inv_id in (ada.id, grace.id):
        inv = app.get_invitation(inv_id, org.id)
        print(f"invitation: {inv.email} role={inv.role} status={inv.status}", file=out)
    app.close()
