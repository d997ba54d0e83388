"""``a4c-projector show``: the read models for people (table) and scripts (JSON, CSV),
filtered, and never with a token or its hash."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.invitation import Invitation
from a4c_domain.organization import Organization
from a4c_projector import cli
from a4c_projector.dialects.connection import connect
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel.tables import LIVE
from tests.projector.conftest import Store, run_cli


@pytest.fixture
def shown(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    app = sqlite_store.app
    acme = app.register_organization(
        name="Acme Corp", slug="acme", org_type="provider", tags=["eu", "gold"]
    )
    app.activate(organization_id=acme.id)
    beta = app.register_organization(name="Beta", slug="beta", org_type="partner", tags=["eu"])
    invited = {
        name: app.invite(
            organization_id=org.id,
            email=f"{name}@example.com",
            role="member",
            first_name=name.title(),
            last_name="X",
        )
        for org, name in ((acme, "alice"), (acme, "bob"), (beta, "dora"))
    }
    app.revoke_invitation(
        organization_id=ALL_ORGANIZATIONS, invitation_id=invited["bob"].id, reason="x"
    )
    projector = sqlite_store.projector()
    projector.catch_up()
    projector.close()
    for key in list(os.environ):
        if key.startswith(("PROJECTOR_", "POSTGRES_", "SQLITE_", "PERSISTENCE_", "A4C_")):
            monkeypatch.delenv(key)
    for key, value in sqlite_store.env.items():
        monkeypatch.setenv(key, value)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield sqlite_store
    root.handlers[:], root.level = handlers, level


def show(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["show", *args])
    out, err = capsys.readouterr()
    return code, out, err


def secrets_of(store: Store) -> list[str]:
    with ReadModel(store.location) as reads:
        invitations = reads.invitations(ALL_ORGANIZATIONS)
    tokens = [store.app.invitation_token(i.id, ALL_ORGANIZATIONS) for i in invitations]
    return tokens + [i.token_hash for i in invitations]


def test_show_as_a_table_in_a_real_process(shown: Store) -> None:
    code, out, err = run_cli(shown.env, "show", "organizations")
    assert code == 0, err
    header, rule, *rows = out.splitlines()
    assert header.split()[:4] == ["slug", "name", "org_type", "status"]
    assert set(rule) == {"-", " "}
    assert [r.split()[0] for r in rows] == ["acme", "beta"]
    assert "eu,gold" in rows[0] and "active" in rows[0]
    code, out, _ = run_cli(shown.env, "show", "invitations")
    assert code == 0 and len(out.splitlines()) == 2 + 3
    assert not [s for s in secrets_of(shown) if s in out]


def test_show_filters_and_formats(shown: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = show(
        capsys, "organizations", "--tag", "eu", "--status", "active", "--format", "json"
    )
    assert code == 0
    (acme,) = json.loads(out)
    assert (acme["slug"], acme["tags"], acme["status"]) == ("acme", ["eu", "gold"], "active")

    code, out, _ = show(capsys, "organizations", "--tag", "gold", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["slug"] for r in rows] == ["acme"] and rows[0]["tags"] == "eu,gold"

    code, out, _ = show(capsys, "invitations", "--org", "acme", "--format", "json")
    data = json.loads(out)
    assert [(i["organization"], i["email"], i["status"]) for i in data] == [
        ("acme", "alice@example.com", "pending"),
        ("acme", "bob@example.com", "revoked"),
    ]
    assert "token_hash" not in data[0]

    code, out, _ = show(capsys, "invitations", "--status", "pending", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["organization"], r["email"]) for r in rows] == [
        ("acme", "alice@example.com"),
        ("beta", "dora@example.com"),
    ]
    code, out, _ = show(capsys, "invitations", "--tag", "gold", "--format", "json")
    assert [i["email"] for i in json.loads(out)] == ["alice@example.com", "bob@example.com"]

    everything = "".join(
        show(capsys, kind, "--format", fmt)[1]
        for kind in ("organizations", "invitations")
        for fmt in ("table", "json", "csv")
    )
    assert "alice@example.com" in everything
    assert not [s for s in secrets_of(shown) if s in everything]


def test_show_refuses_an_unknown_organization(
    shown: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = show(capsys, "invitations", "--org", "nobody")
    assert code == 1 and out == "" and "nobody" in err
    with pytest.raises(SystemExit) as usage:
        cli.main(["show", "organizations", "--format", "xml"])
    assert usage.value.code == 2 and "--format" in capsys.readouterr().err


FORMULAS = ['=HYPERLINK("http://evil.test","x")', "+1+1", "-2+3", "@SUM(A1)"]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(
    sqlite_store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = sqlite_store.app
    for n, formula in enumerate(FORMULAS):
        # Registration and invite refuse such names now; events recorded before still hold them.
        org = Organization(
            name=formula, slug=f"f{n}", org_type="provider", parent_id=None, tags=[], domain=None
        )
        app.save(org)
        email = f"u{n}@example.com"
        app.save(
            Invitation(
                organization_id=org.id, email=email, role="member", first_name=formula,
                last_name="X", generation=1,
                token_hash=app.tokens.token_hash(Invitation.create_id(org.id, email, 1), 1),
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )  # fmt: skip
    projector = sqlite_store.projector()
    projector.catch_up()
    projector.close()
    for key, value in sqlite_store.env.items():
        monkeypatch.setenv(key, value)
    _, out, _ = show(capsys, "organizations", "--format", "csv")
    names = [r["name"] for r in csv.DictReader(io.StringIO(out))]
    assert names == ["'" + f for f in FORMULAS]  # shown as text, never evaluated
    _, out, _ = show(capsys, "invitations", "--format", "csv")
    assert [r["first_name"] for r in csv.DictReader(io.StringIO(out))] == names
    _, out, _ = show(capsys, "organizations", "--format", "json")
    assert [o["name"] for o in json.loads(out)] == FORMULAS  # JSON is data: unchanged


def alice_accepts(shown: Store) -> None:
    """Alice accepts her invitation as ``user-alice``, and the projection shows it."""
    app = shown.app
    with ReadModel(shown.location) as reads:
        alice = next(i for i in reads.invitations(ALL_ORGANIZATIONS) if i.first_name == "Alice")
    app.accept_invitation(
        organization_id=alice.organization_id,
        invitation_id=alice.id,
        token=app.invitation_token(alice.id, alice.organization_id),
        user_id="user-alice",
    )
    projector = shown.projector()
    projector.catch_up()
    projector.close()


def test_show_members_after_an_accept(shown: Store, capsys: pytest.CaptureFixture[str]) -> None:
    """Who joined, per organization (the `a4c dev` report shows them after an accept)."""
    alice_accepts(shown)
    code, out, err = show(capsys, "members", "--format", "json")
    assert (code, err) == (0, "")
    [member] = json.loads(out)
    assert (member["organization"], member["email"], member["role"], member["user_id"]) == (
        "acme",
        "alice@example.com",
        "member",
        "user-alice",
    )
    code, out, _ = show(capsys, "members", "--org", "beta")
    assert code == 0 and out.splitlines()[2:] == []  # header and rule only
    code, out, _ = show(capsys, "members", "--tag", "gold")
    assert code == 0 and "user-alice" in out.splitlines()[2]
    assert not [s for s in secrets_of(shown) if s in out]


def test_show_members_of_a_projection_from_before_the_members_table(
    shown: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 0.2 projection has no members table: the first command of this release creates
    it and derives the members of invitations accepted back then, before showing them."""
    alice_accepts(shown)
    with connect(shown.location) as db, db.transaction():
        db.execute(f'DROP TABLE "{LIVE.members}"')  # as a 0.2 projection is
    code, out, err = show(capsys, "members", "--format", "json")
    assert (code, err) == (0, "")
    assert [m["user_id"] for m in json.loads(out)] == ["user-alice"]
