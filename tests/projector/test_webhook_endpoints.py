"""The webhook endpoints read model on both stores: one row per endpoint, from its events.

Endpoints are saved as aggregates through the application (their commands are another
part's), with other events in between so that positions are not consecutive; the live
projection runs one event per batch, and its rows must equal a rebuild's (all events
in one batch: folded), audit clean. ``enabled_since`` is the position of the event that
(re-)enabled an endpoint, not its row's last position. The sealed secrets are only ever
in the secret columns, and the queries answer for their owner alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from a4c_domain.commands import Role
from a4c_domain.ids import webhook_endpoint_id
from a4c_domain.webhook_endpoint import WebhookEndpoint
from a4c_projector.dialects.connection import connect
from a4c_projector.maintenance.rebuild import rebuild
from a4c_projector.queries import ReadModel
from a4c_projector.schema import WEBHOOK_ENDPOINTS, compared_columns
from a4c_projector.webhook_queries import WebhookEndpointRow
from tests.projector.conftest import Store, assert_complete, catch_up_past_gaps
from tests.projector.test_members import accept, invite

EXPIRES = datetime(2030, 1, 1, 12, tzinfo=UTC)


def sealed(label: str) -> str:
    """Stand-in sealed text, easy to find wherever it might leak."""
    return f"SEALED.{label}.{'x' * 24}"


def save(app: OnboardingApplication, endpoint: WebhookEndpoint) -> list[int]:
    """Save ``endpoint``'s new events; their notification ids, in order."""
    return [recording.notification.id for recording in app.save(endpoint)]


def project(store: Store, **kwargs: Any) -> None:
    projector = store.projector(**kwargs)
    try:
        catch_up_past_gaps(projector)
    finally:
        projector.close()


def endpoint(owner: UUID | None, name: str, **settings: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        owner_id=owner,
        name=name,
        url=settings.get("url", f"https://hooks.example.com/{name}"),
        event_types=settings.get("event_types"),
        organization_id=settings.get("organization_id"),
        description=settings.get("description", ""),
        secret=settings.get("secret", sealed(name)),
    )


@dataclass
class World:
    store: Store
    acme: UUID
    beta: UUID
    hooks: WebhookEndpoint  # acme's: changed, rotated, disabled, enabled again
    added: int  # hooks' Added
    enabled: int  # hooks' Enabled
    audit: WebhookEndpoint  # the platform's, for beta's events
    old: WebhookEndpoint  # beta's, deleted
    again: WebhookEndpoint  # beta's: rotated, deleted, reinstated
    reinstated: int
    burst: WebhookEndpoint  # acme's: five events saved together, last enabled by the 4th
    burst_enabled: int
    fresh: WebhookEndpoint  # acme's: added and changed together
    fresh_added: int


def make_world(store: Store) -> World:
    app = store.app
    acme = app.register_organization(name="Acme", slug="acme", org_type="provider").id
    beta = app.register_organization(name="Beta", slug="beta", org_type="partner").id

    hooks = endpoint(
        acme,
        "hooks",
        event_types=["organization.activated", "invitation.accepted"],  # sorted when stored
        description="Acme's receiver",
        secret=sealed("hooks-1"),
    )
    (added,) = save(app, hooks)
    app.activate(organization_id=acme)
    hooks.change(
        url="https://acme.example.com/v2/hooks",
        event_types=None,
        organization_id=acme,
        description="every event",
    )
    hooks.rotate_secret(sealed("hooks-2"), EXPIRES)
    save(app, hooks)
    hooks.disable("failing for 3 days", automatic=True)
    save(app, hooks)
    app.activate(organization_id=beta)
    hooks.enable()
    (enabled,) = save(app, hooks)

    audit = endpoint(None, "audit", organization_id=beta, secret=sealed("audit"))
    save(app, audit)
    old = endpoint(beta, "old", secret=sealed("old"))
    save(app, old)
    old.delete()
    save(app, old)

    again = endpoint(beta, "again", secret=sealed("again-1"))
    save(app, again)
    again.rotate_secret(sealed("again-2"), EXPIRES)
    again.disable("paused", automatic=False)
    again.delete()
    save(app, again)
    assert again.reinstate(
        url="https://beta.example.com/again",
        event_types=["invitation.invited"],
        organization_id=None,
        description="back",
        secret=sealed("again-3"),
    )
    (reinstated,) = save(app, again)

    burst = endpoint(acme, "burst", secret=sealed("burst"))
    burst.change(url="https://acme.example.com/b", event_types=None, organization_id=None,
                 description="1")  # fmt: skip
    burst.disable("maintenance", automatic=False)
    burst.enable()
    burst.change(url="https://acme.example.com/c", event_types=None, organization_id=None,
                 description="2")  # fmt: skip
    burst_positions = save(app, burst)
    fresh = endpoint(acme, "fresh", secret=sealed("fresh"))
    fresh.change(url="https://acme.example.com/f", event_types=None, organization_id=None,
                 description="changed at once")  # fmt: skip
    fresh_positions = save(app, fresh)

    # Admins and others of acme, for the disable mail's addresses.
    roles: list[tuple[str, Role]] = [
        ("alice", "owner"), ("bob", "admin"), ("carol", "member"), ("dave", "admin"),
        ("erin", "viewer"),
    ]  # fmt: skip
    ids = {name: invite(app, acme, name, role) for name, role in roles}
    for name in ("alice", "bob", "carol", "erin"):  # dave has not accepted
        accept(app, acme, ids[name], f"u-{name}")
    frank = invite(app, beta, "frank", "admin")
    accept(app, beta, frank, "u-frank")
    bob_at_beta = invite(app, beta, "bob", "admin")
    accept(app, beta, bob_at_beta, "u-bob")

    project(store, batch_size=1)  # live: one event per batch
    return World(
        store, acme, beta, hooks, added, enabled, audit, old, again, reinstated,
        burst, burst_positions[3], fresh, fresh_positions[0],
    )  # fmt: skip


@pytest.fixture
def world(any_store: Store) -> World:
    return make_world(any_store)


@pytest.fixture
def reads(world: World) -> Any:
    with ReadModel(world.store.location) as read_model:
        yield read_model


def row(reads: ReadModel, aggregate: WebhookEndpoint) -> WebhookEndpointRow:
    found = reads.webhook_endpoint(aggregate.id)
    assert found is not None, aggregate.name
    return found


def test_a_row_holds_the_endpoints_state_and_since_when_it_is_enabled(
    world: World, reads: ReadModel
) -> None:
    hooks = row(reads, world.hooks)
    assert hooks.id == webhook_endpoint_id(world.acme, "hooks")
    assert (hooks.owner_id, hooks.name, hooks.url, hooks.event_types) == (
        world.acme,
        "hooks",
        "https://acme.example.com/v2/hooks",
        None,
    )
    assert (hooks.organization_id, hooks.description) == (world.acme, "every event")
    assert (hooks.secret, hooks.previous_secret) == (sealed("hooks-2"), sealed("hooks-1"))
    assert hooks.previous_secret_expires_at == EXPIRES
    assert (hooks.status, hooks.disabled_reason, hooks.disabled_automatically) == (
        "enabled",
        None,
        False,
    )
    # Enabled again: only what comes after that event is delivered.
    assert hooks.enabled_since == world.enabled == hooks.last_position
    assert world.enabled > world.added
    assert hooks.created_at == world.hooks.created_on
    assert hooks.modified_at == world.hooks.modified_on
    assert hooks.version == world.hooks.version == 5

    audit = row(reads, world.audit)
    assert (audit.owner_id, audit.organization_id, audit.event_types) == (None, world.beta, None)
    assert audit.enabled_since == audit.last_position  # its Added
    assert audit.previous_secret is None and audit.previous_secret_expires_at is None

    old = row(reads, world.old)
    assert old.status == "deleted" and old.version == 2

    again = row(reads, world.again)  # a new life: a new secret, none previous, enabled
    assert (again.status, again.url, again.event_types, again.description) == (
        "enabled",
        "https://beta.example.com/again",
        ("invitation.invited",),
        "back",
    )
    assert (again.secret, again.previous_secret, again.previous_secret_expires_at) == (
        sealed("again-3"),
        None,
        None,
    )
    assert (again.disabled_reason, again.disabled_automatically) == (None, False)
    assert again.enabled_since == world.reinstated
    assert again.created_at == world.again.created_on  # when it was first added


def test_enabled_since_is_the_enabling_events_position_however_batched(
    world: World, reads: ReadModel
) -> None:
    """Events saved together: the live rows came one event per batch, a rebuild folds
    them into one change per row; both keep the enabling event's position, not the last
    one's."""
    burst, fresh = row(reads, world.burst), row(reads, world.fresh)
    assert burst.enabled_since == world.burst_enabled == burst.last_position - 1
    assert (burst.description, burst.status) == ("2", "enabled")
    assert fresh.enabled_since == world.fresh_added == fresh.last_position - 1
    assert_complete(world.store)  # the rebuild (one batch) equals the live rows; audit clean
    live = world.store.live_rows()
    report = rebuild(world.store.location, world.store.store.mapper)
    assert report.swapped and report.differences == []
    assert world.store.live_rows() == live
    assert row(reads, world.burst).enabled_since == world.burst_enabled  # swapped in


def test_an_automatic_disable_is_recorded_with_its_reason(any_store: Store) -> None:
    app = any_store.app
    org = app.register_organization(name="Acme", slug="acme", org_type="provider").id
    hooks = endpoint(org, "hooks", event_types=["organization.activated"])
    save(app, hooks)
    hooks.disable("410 Gone", automatic=True)
    save(app, hooks)
    project(any_store)
    with ReadModel(any_store.location) as reads:
        found = row(reads, hooks)
        assert (found.status, found.disabled_reason, found.disabled_automatically) == (
            "disabled",
            "410 Gone",
            True,
        )
        assert found.event_types == ("organization.activated",)
        assert reads.enabled_webhook_endpoints() == []
    assert_complete(any_store)


def test_the_sealed_secrets_are_only_in_the_secret_columns(world: World, reads: ReadModel) -> None:
    secret_columns = {"secret", "previous_secret"}
    rows = reads.webhook_endpoints(ALL_ORGANIZATIONS, include_deleted=True)
    assert len(rows) == 6
    for found in rows:
        values = {f.name: getattr(found, f.name) for f in fields(found)}
        assert values["secret"].startswith("SEALED.")
        for name, value in values.items():
            if name not in secret_columns:
                assert "SEALED" not in str(value), (found.name, name)
        shown = repr(found)
        assert "SEALED" not in shown and "secret=" not in shown and found.url not in shown
        assert found.name in shown
    columns = WEBHOOK_ENDPOINTS.column_names
    with connect(world.store.location) as db:
        bodies = db.execute("SELECT body FROM public_events")
        stored = db.execute(f"SELECT {', '.join(columns)} FROM webhook_endpoints")
    assert bodies and not [b for (b,) in bodies if "SEALED" in str(b)]  # internal events
    holding = {
        name for r in stored for name, v in zip(columns, r, strict=True) if "SEALED" in str(v)
    }
    assert holding == secret_columns


def test_each_owner_sees_its_own_endpoints(world: World, reads: ReadModel) -> None:
    names = {
        owner: [r.name for r in reads.webhook_endpoints(owner)]
        for owner in (world.acme, world.beta, None)
    }
    assert names == {
        world.acme: ["burst", "fresh", "hooks"],
        world.beta: ["again"],
        None: ["audit"],
    }
    assert [r.name for r in reads.webhook_endpoints(world.beta, include_deleted=True)] == [
        "again",
        "old",
    ]
    everyone = reads.webhook_endpoints(ALL_ORGANIZATIONS)
    assert everyone[0].name == "audit"  # the platform's first
    assert sorted(r.name for r in everyone) == ["again", "audit", "burst", "fresh", "hooks"]
    assert reads.webhook_endpoints(UUID(int=7)) == []
    with pytest.raises(TypeError, match="an owner is a UUID"):
        reads.webhook_endpoints("acme")  # type: ignore[arg-type]
    assert reads.webhook_endpoint(UUID(int=7)) is None
    assert row(reads, world.old).status == "deleted"


def test_the_daemon_gets_the_enabled_endpoints_with_their_sealed_secrets(
    world: World, reads: ReadModel
) -> None:
    enabled = {r.name: r for r in reads.enabled_webhook_endpoints()}
    assert sorted(enabled) == ["again", "audit", "burst", "fresh", "hooks"]
    assert enabled["hooks"].secret == sealed("hooks-2")
    assert enabled["hooks"].previous_secret == sealed("hooks-1")
    assert json.dumps(enabled["again"].event_types) == '["invitation.invited"]'


def test_the_admins_addresses_of_one_organization(world: World, reads: ReadModel) -> None:
    """Accepted owners and admins of that organization only: not a pending admin, not a
    member or viewer, not another organization's."""
    assert reads.organization_admin_emails(world.acme) == ["alice@example.com", "bob@example.com"]
    assert reads.organization_admin_emails(world.beta) == ["bob@example.com", "frank@example.com"]
    assert reads.organization_admin_emails(UUID(int=7)) == []


def test_a_row_holds_its_tables_columns() -> None:
    assert tuple(f.name for f in fields(WebhookEndpointRow)) == compared_columns(WEBHOOK_ENDPOINTS)
