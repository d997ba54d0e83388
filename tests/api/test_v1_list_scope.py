"""``GET /v1/organizations`` for anyone but an operator reads only the caller's
organizations from the read model (never every tenant's, filtered afterwards), and
still answers the status and tag filters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.api.v1_support import Caller, World

from a4c_projector.queries import ReadModel


@pytest.fixture
def organization_rows_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The slug of every organization row any ReadModel of this process fetches (the API
    serves from a thread of the test process)."""
    read: list[str] = []
    select = ReadModel._select

    def counting(
        self: ReadModel, table: str, columns: tuple[str, ...], where: str, params: Any
    ) -> list[Any]:
        rows = select(self, table, columns, where, params)
        if table == self.tables.organizations:
            read.extend(row["slug"] for row in rows)
        return rows

    monkeypatch.setattr(ReadModel, "_select", counting)
    yield read


@pytest.mark.parametrize(
    ("caller", "own"),
    [(Caller.ADMIN_A, "a"), (Caller.MEMBER_A, "a"), (Caller.KEY_A, "a"), (Caller.ADMIN_B, "b")],
)
async def test_a_tenant_lists_without_reading_other_tenants_rows(
    world: World, organization_rows_read: list[str], caller: Caller, own: str
) -> None:
    mine = getattr(world.orgs, own)
    answers: dict[str, list[str]] = {}
    async with world.client() as client:
        for query in ("", "?status=active", "?tag=test", "?status=deactivated", "?tag=nope"):
            response = await client.get("/v1/organizations" + query, headers=world.headers(caller))
            assert response.status_code == 200, response.text
            answers[query] = [o["slug"] for o in response.json()["organizations"]]
    assert answers == {
        "": [mine],
        "?status=active": [mine],
        "?tag=test": [mine],
        "?status=deactivated": [],
        "?tag=nope": [],
    }
    assert set(organization_rows_read) == {mine}, "another tenant's rows were read"


async def test_an_operator_still_lists_every_tenant(world: World) -> None:
    async with world.client() as client:
        response = await client.get("/v1/organizations", headers=world.headers(Caller.OPERATOR))
    slugs = {o["slug"] for o in response.json()["organizations"]}
    assert {world.orgs.a, world.orgs.b} <= slugs
