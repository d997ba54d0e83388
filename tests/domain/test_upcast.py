"""Schema evolution: a stored v1 ``Organization.Registered`` (no tags, no domain) still loads."""

from __future__ import annotations

from datetime import UTC, datetime

from eventsourcing.persistence import StoredEvent

from a4c_domain import Organization, organization_id
from tests.domain.support import Store, events


def test_v1_registered_event_is_upcast(store: Store) -> None:
    app = store.open()
    org_id = organization_id("legacy")
    v1_state = {
        "timestamp": datetime(2024, 5, 1, tzinfo=UTC),
        "originator_topic": "a4c_domain.organization:Organization",
        "metadata": {"correlation_id": "migrated"},
        "name": "Legacy Ltd",
        "slug": "legacy",
        "org_type": "partner",
        "parent_id": None,
        # v1: no "tags", no "domain", and no "class_version" (absent means 1)
    }
    state = app.mapper.transcoder.encode(v1_state)
    assert b"class_version" not in state and b"tags" not in state
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=org_id,
                originator_version=1,
                topic="a4c_domain.organization:Organization.Registered",
                state=state,
            )
        ]
    )

    fresh = store.open()
    view = fresh.get_organization(org_id)
    assert (view.name, view.slug, view.org_type) == ("Legacy Ltd", "legacy", "partner")
    assert view.tags == () and view.domain is None
    (registered,) = events(fresh)
    assert isinstance(registered, Organization.Registered)
    assert registered.tags == [] and registered.domain is None
    # The upcast aggregate takes new commands, and the same registration is a no-op.
    assert (
        fresh.register_organization(name="Legacy Ltd", slug="legacy", org_type="partner").position
        is None
    )
    assert fresh.activate(organization_id=org_id).version == 2
    # The v1 row is untouched: upcasting happens on read, never by rewriting history.
    assert store.raw_states()[0] == state
