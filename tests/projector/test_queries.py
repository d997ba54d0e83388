"""``a4c_projector.queries.ReadModel`` on both stores: every method, real data.

The data comes from domain commands, the read model from the projector; each query is
checked against what the commands did (and against what they did *not* do).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from a4c_domain import ALL_ORGANIZATIONS, hash_token, invitation_id
from a4c_domain.errors import InvalidScope
from a4c_projector.queries import ProjectionTimeout, ReadModel
from tests.projector.conftest import Store


@dataclass
class World:
    store: Store
    ids: dict[str, Any]


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    store: Store = request.getfixturevalue(
        f"{'pg' if request.param == 'postgres' else 'sqlite'}_store"
    )
    app = store.app
    acme = app.register_organization(
        name="Acme",
        slug="acme",
        org_type="provider",
        tags=["eu", "gold"],
        domain="acme.example.com",
    )
    app.configure_dns(
        organization_id=acme.id, fqdn="acme.example.com", target="lb.example.com", record_id="r1"
    )
    app.verify_dns(organization_id=acme.id)
    app.activate(organization_id=acme.id)
    beta = app.register_organization(name="Beta", slug="beta", org_type="partner", tags=["eu"])
    gamma = app.register_organization(name="Gamma", slug="gamma", org_type="partner", tags=["us"])
    app.deactivate(organization_id=gamma.id, reason="bounced", failed_step="dns")
    ids: dict[str, Any] = {"acme": acme.id, "beta": beta.id, "gamma": gamma.id}
    for name in ("alice", "bob", "carol"):
        ids[name] = app.invite(
            organization_id=acme.id,
            email=f"{name}@example.com",
            role="member",
            first_name=name.title(),
            last_name="X",
        ).id
        app.record_email_sent(
            organization_id=acme.id,
            invitation_id=ids[name],
            token_generation=1,
            message_id=name,
        )
    app.revoke_invitation(organization_id=acme.id, invitation_id=ids["bob"], reason="left")
    app.accept_invitation(
        organization_id=acme.id,
        invitation_id=ids["carol"],
        token=app.invitation_token(ids["carol"], acme.id),
        user_id="u-carol",
    )
    projector = store.projector()
    projector.catch_up()
    projector.close()
    yield World(store, ids)


@pytest.fixture
def reads(world: World) -> Iterator[ReadModel]:
    with ReadModel(world.store.location) as read_model:
        yield read_model


def test_organization_by_id_and_by_slug(world: World, reads: ReadModel) -> None:
    acme = reads.organization(world.ids["acme"])
    assert acme is not None and acme == reads.organization_by_slug("acme")
    assert (acme.slug, acme.name, acme.org_type, acme.tags) == (
        "acme", "Acme", "provider", ("eu", "gold"),
    )  # fmt: skip
    assert (acme.status, acme.dns_status, acme.fqdn) == ("active", "verified", "acme.example.com")
    assert acme.dns_verified_at is not None and acme.activated_at is not None
    assert acme.registered_at <= acme.dns_verified_at <= acme.activated_at
    # Registered, DNS configured and verified, activated, and three invitations listed.
    assert acme.deactivated_at is None and acme.version == 7
    gamma = reads.organization_by_slug("gamma")
    assert gamma is not None and (gamma.status, gamma.deactivation_reason) == (
        "deactivated", "bounced",
    )  # fmt: skip
    assert reads.organization(world.ids["alice"]) is None  # an invitation's id
    assert reads.organization_by_slug("nobody") is None


def test_list_organizations_by_status_and_tag(reads: ReadModel) -> None:
    def slugs(status: str | None = None, tag: str | None = None) -> list[str]:
        return [o.slug for o in reads.organizations(status=status, tag=tag)]

    assert slugs() == ["acme", "beta", "gamma"]
    assert slugs(status="active") == ["acme"]
    assert slugs(status="registered") == ["beta"]
    assert slugs(tag="eu") == ["acme", "beta"]
    assert slugs(tag="gold") == ["acme"]
    assert slugs(tag="eu", status="registered") == ["beta"]
    assert slugs(tag="e") == []  # a tag matches whole, not as a prefix
    assert slugs(status="nope") == []


def test_invitations_by_organization_and_status(world: World, reads: ReadModel) -> None:
    def emails(organization: str, status: str | None = None) -> list[str]:
        org = ALL_ORGANIZATIONS if organization == "all" else world.ids[organization]
        return [i.email for i in reads.invitations(org, status=status)]

    everyone = ["alice@example.com", "bob@example.com", "carol@example.com"]
    assert emails("acme") == everyone
    assert emails("all") == everyone
    assert emails("acme", "pending") == ["alice@example.com"]
    assert emails("acme", "revoked") == ["bob@example.com"]
    assert emails("acme", "accepted") == ["carol@example.com"]
    assert emails("beta") == []
    carol = reads.invitations(world.ids["acme"], status="accepted")[0]
    assert (carol.accepted_by, carol.email_status, carol.message_id) == ("u-carol", "sent", "carol")


def test_invitation_by_token_finds_only_the_current_token(world: World, reads: ReadModel) -> None:
    app = world.store.app
    token = app.invitation_token(world.ids["alice"], world.ids["acme"])
    found = reads.invitation_by_token(token)
    assert found is not None and found.id == world.ids["alice"]
    assert found.token_hash == hash_token(token) != token
    assert token not in found.model_dump_json()  # the read model holds no token
    assert reads.invitation_by_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert reads.invitation_by_token("") is None
    # A reissued token replaces the old one in the read model.
    app.reissue_token(
        organization_id=ALL_ORGANIZATIONS, invitation_id=world.ids["alice"], token_generation=2
    )
    projector = world.store.projector()
    projector.catch_up()
    projector.close()
    assert reads.invitation_by_token(token) is None
    fresh = reads.invitation_by_token(app.invitation_token(world.ids["alice"], ALL_ORGANIZATIONS))
    assert fresh is not None and fresh.token_generation == 2


def test_wait_until_returns_once_the_projection_reaches_the_write(
    world: World, reads: ReadModel
) -> None:
    view = world.store.app.activate(organization_id=world.ids["beta"])
    assert view.position is not None
    before = reads.position()
    assert before < view.position
    assert reads.wait_until(None) == before  # nothing to wait for
    with pytest.raises(ProjectionTimeout, match=f"at {before}, not {view.position}"):
        reads.wait_until(view.position, timeout=0.2)

    def project_later() -> None:
        time.sleep(0.3)
        projector = world.store.projector()
        projector.catch_up()
        projector.close()

    thread = threading.Thread(target=project_later)
    thread.start()
    try:
        assert reads.wait_until(view.position, timeout=30) >= view.position
        beta = reads.organization(world.ids["beta"])
        assert beta is not None and beta.status == "active"  # read your own write
    finally:
        thread.join()
    # An already-reached position returns at once, even with no time to wait.
    assert reads.wait_until(view.position, timeout=0) >= view.position


# --- organization scope -------------------------------------------------------------


@pytest.mark.parametrize("scope", [None, "acme", "all"])
def test_every_tenant_is_an_explicit_choice(reads: ReadModel, scope: str | None) -> None:
    """``invitations(None)`` used to mean every organization; now nothing but a UUID or
    ``ALL_ORGANIZATIONS`` is a scope."""
    with pytest.raises(InvalidScope, match="ALL_ORGANIZATIONS"):
        reads.invitations(scope)  # type: ignore[arg-type]  # the wrong scope is the test


def test_another_tenants_invitation_is_not_found(world: World, reads: ReadModel) -> None:
    alice, acme, beta = world.ids["alice"], world.ids["acme"], world.ids["beta"]
    unknown = invitation_id(beta, "alice@example.com")  # issued nowhere
    assert reads.invitation(alice, beta) is None
    assert reads.invitation(alice, beta) == reads.invitation(unknown, beta)
    assert reads.invitations(beta) == []
    for scope in (acme, ALL_ORGANIZATIONS):
        found = reads.invitation(alice, scope)
        assert found is not None and (found.id, found.status) == (alice, "pending")
    assert reads.invitation(unknown, ALL_ORGANIZATIONS) is None


def test_a_deactivation_revokes_in_the_read_model_too(world: World) -> None:
    app, beta = world.store.app, world.ids["beta"]
    dave = app.invite(
        organization_id=beta, email="dave@example.com", role="owner", first_name="D", last_name="X"
    )
    done = app.deactivate(organization_id=beta, reason="bootstrap failed")
    projector = world.store.projector()
    projector.catch_up()
    projector.close()
    with ReadModel(world.store.location) as reads:
        reads.wait_until(done.position)
        row = reads.invitation(dave.id, beta)
        assert row is not None
        assert (row.status, row.revoke_reason) == ("revoked", "organization deactivated")
        org = reads.organization(beta)
        assert org is not None and (org.status, org.version) == ("deactivated", 3)
        # acme's invitations are another organization's: untouched.
        assert [i.status for i in reads.invitations(world.ids["acme"])] == [
            "pending",
            "revoked",
            "accepted",
        ]
