"""``ReadModel.organizations`` limited to some organizations, on both stores: by ids (an
organization's key) and by membership (a person), with the status and tag filters, and
reading no other tenant's rows to answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from a4c_projector.queries import ReadModel
from tests.projector.conftest import Store


@dataclass
class World:
    reads: ReadModel
    ids: dict[str, UUID]  # by slug


@pytest.fixture
def world(any_store: Store) -> Iterator[World]:
    """acme (active, eu), beta (registered, eu), gamma (registered, us); alice a member of
    acme and beta, bob of gamma."""
    app = any_store.app
    ids: dict[str, UUID] = {}
    for slug, tag in (("acme", "eu"), ("beta", "eu"), ("gamma", "us")):
        ids[slug] = app.register_organization(
            name=slug.title(), slug=slug, org_type="provider", tags=[tag]
        ).id
    app.activate(organization_id=ids["acme"])
    for user, slug in (("u-alice", "acme"), ("u-alice", "beta"), ("u-bob", "gamma")):
        invitation = app.invite(
            organization_id=ids[slug],
            email=f"{user}@{slug}.example.com",
            role="member",
            first_name="A",
            last_name="B",
        ).id
        app.accept_invitation(
            organization_id=ids[slug],
            invitation_id=invitation,
            token=app.invitation_token(invitation, ids[slug]),
            user_id=user,
        )
    projector = any_store.projector()
    projector.catch_up()
    projector.close()
    with ReadModel(any_store.location) as reads:
        yield World(reads, ids)


class RowsRead:
    """Every organization row a ReadModel fetched from the database."""

    def __init__(self, reads: ReadModel, monkeypatch: pytest.MonkeyPatch) -> None:
        self.slugs: list[str] = []
        select = reads._select

        def counting(table: str, columns: tuple[str, ...], where: str, params: Any) -> list[Any]:
            rows = select(table, columns, where, params)
            if table == reads.tables.organizations:
                self.slugs += [row["slug"] for row in rows]
            return rows

        monkeypatch.setattr(reads, "_select", counting)


def test_a_members_organizations_are_read_alone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = world.reads
    read = RowsRead(reads, monkeypatch)

    def slugs(**filters: Any) -> list[str]:
        return [o.slug for o in reads.organizations(**filters)]

    assert slugs(member="u-alice") == ["acme", "beta"]
    assert slugs(member="u-alice", status="active") == ["acme"]
    assert slugs(member="u-alice", tag="eu", status="registered") == ["beta"]
    assert slugs(member="u-alice", tag="us") == []
    assert slugs(member="u-bob") == ["gamma"]
    assert slugs(member="u-nobody") == []
    # Only the rows that were answered were read: never another tenant's.
    assert read.slugs == ["acme", "beta", "acme", "beta", "gamma"]


def test_organizations_by_id(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    reads, ids = world.reads, world.ids
    read = RowsRead(reads, monkeypatch)

    def slugs(**filters: Any) -> list[str]:
        return [o.slug for o in reads.organizations(**filters)]

    assert slugs(ids=[ids["gamma"], ids["acme"]]) == ["acme", "gamma"]
    assert slugs(ids=[ids["beta"]], tag="eu") == ["beta"]
    assert slugs(ids=[ids["beta"]], status="active") == []
    assert slugs(ids=[uuid4()]) == []
    assert slugs(ids=[]) == []
    assert slugs(ids=[ids["acme"]], member="u-bob") == []  # both limits hold
    assert read.slugs == ["acme", "gamma", "beta"]
