"""The invitation-tokens read model and the read side's catch-up, on both stores.

Tokens come from domain commands through the projector: the accept page asks
``token_match`` which invitation a presented token was issued to and whether a re-send
has superseded it. Each test checks what a token matches (or not), that no table holds
a token in plain, that a rebuild (one batch: the invitation and its re-send folded
together) equals the live tables (one event per batch), and that a projection which
ran before the table existed gets every generation. ``catch_up`` is checked against the
real daemon, stopped and started again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from a4c_projector.dialects.connection import connect
from a4c_projector.maintenance.rebuild import rebuild
from a4c_projector.queries import ProjectionTimeout, ReadModel
from a4c_projector.readmodel.tables import LIVE
from tests.projector.conftest import Daemon, Store, catch_up_past_gaps, store_head, tracked_position
from tests.support import wait_for


@dataclass
class Invitations:
    store: Store
    acme: UUID
    ids: dict[str, UUID]
    tokens: dict[str, str]  # "alice-1", "alice-2", "bob-1": each generation's token


def invite(app: OnboardingApplication, org: UUID, name: str) -> UUID:
    view = app.invite(
        organization_id=org,
        email=f"{name}@example.com",
        role="member",
        first_name=name.rstrip("0123456789").title(),  # a name holds no digits
        last_name="X",
    )
    return UUID(str(view.id))


def resend(app: OnboardingApplication, org: UUID, invitation: UUID) -> str:
    """Re-send ``invitation``: its new token."""
    current = app.get_invitation(invitation, org).token_generation
    app.reissue_token(organization_id=org, invitation_id=invitation, token_generation=current + 1)
    return app.invitation_token(invitation, org)


def project(store: Store, **kwargs: Any) -> int:
    projector = store.projector(**kwargs)
    try:
        return catch_up_past_gaps(projector)
    finally:
        projector.close()


@pytest.fixture
def invitations(any_store: Store) -> Invitations:
    """acme: alice invited then re-sent (two generations); bob invited and accepted."""
    app = any_store.app
    acme = app.register_organization(name="Acme", slug="acme", org_type="provider").id
    app.activate(organization_id=acme)
    ids = {"alice": invite(app, acme, "alice"), "bob": invite(app, acme, "bob")}
    tokens = {
        "alice-1": app.invitation_token(ids["alice"], acme),
        "bob-1": app.invitation_token(ids["bob"], acme),
    }
    tokens["alice-2"] = resend(app, acme, ids["alice"])
    app.accept_invitation(
        organization_id=acme, invitation_id=ids["bob"], token=tokens["bob-1"], user_id="u-bob"
    )
    project(any_store, batch_size=1)  # live: one event per batch
    return Invitations(any_store, acme, ids, tokens)


@pytest.fixture
def reads(invitations: Invitations) -> Iterator[ReadModel]:
    with ReadModel(invitations.store.location) as read_model:
        yield read_model


def test_a_resent_invitations_old_token_is_superseded_and_its_new_one_current(
    invitations: Invitations, reads: ReadModel
) -> None:
    old = reads.token_match(invitations.tokens["alice-1"])
    new = reads.token_match(invitations.tokens["alice-2"])
    assert old is not None and new is not None
    assert (old.invitation.id, old.current) == (invitations.ids["alice"], False)
    assert (new.invitation.id, new.current) == (invitations.ids["alice"], True)
    # Both answer with the invitation as it is now (generation 2, still pending).
    assert old.invitation == new.invitation
    assert (new.invitation.token_generation, new.invitation.status) == (2, "pending")
    # The invitation row alone knows only the current token.
    assert reads.invitation_by_token(invitations.tokens["alice-1"]) is None


def test_an_unknown_token_matches_nothing(reads: ReadModel) -> None:
    assert reads.token_match("x" * 43) is None
    assert reads.token_match("") is None


def test_an_accepted_invitations_token_still_matches(
    invitations: Invitations, reads: ReadModel
) -> None:
    match = reads.token_match(invitations.tokens["bob-1"])
    assert match is not None and match.current
    assert (match.invitation.id, match.invitation.status, match.invitation.accepted_by) == (
        invitations.ids["bob"],
        "accepted",
        "u-bob",
    )


def test_one_row_per_generation_with_its_issuing_event(
    invitations: Invitations, reads: ReadModel
) -> None:
    alice = reads.invitation(invitations.ids["alice"], invitations.acme)
    assert alice is not None and alice.token_reissued_at is not None
    with connect(invitations.store.location) as db, db.transaction():
        rows = db.execute(
            "SELECT invitation_id, organization_id, token_generation, issued_at, version "
            f'FROM "{LIVE.invitation_tokens}" ORDER BY invitation_id, token_generation'
        )
    found = {(str(r[0]), int(r[2])): (str(r[1]), r[3], int(r[4])) for r in rows}
    assert set(found) == {
        (str(invitations.ids["alice"]), 1),
        (str(invitations.ids["alice"]), 2),
        (str(invitations.ids["bob"]), 1),
    }
    assert {organization for organization, _, _ in found.values()} == {str(invitations.acme)}
    first, second = found[(str(alice.id), 1)], found[(str(alice.id), 2)]
    # Issued by Invited (version 1) and TokenReissued: at those events' times. SQLite
    # keeps text, PostgreSQL a datetime: compare through the records' parsed values.
    assert first[2] == 1 and second[2] > 1
    assert str(first[1]).replace(" ", "T").startswith(alice.invited_at.isoformat()[:19])
    assert str(second[1]).replace(" ", "T").startswith(alice.token_reissued_at.isoformat()[:19])


def test_no_table_holds_a_token_in_plain(invitations: Invitations) -> None:
    tokens = list(invitations.tokens.values())
    with connect(invitations.store.location) as db, db.transaction():
        stored = [
            str(value)
            for table in (*LIVE.all, "projector_tracking")
            for row in db.execute(f'SELECT * FROM "{table}"')
            for value in row
        ]
    assert len(stored) > 0
    assert not [value for value in stored for token in tokens if token in value]


def test_a_rebuild_equals_the_live_tokens(invitations: Invitations) -> None:
    """The rebuild applies the invitation and its re-send in one batch: both tokens
    still get their row, as in the live tables written one event per batch."""
    store = invitations.store
    live = store.live_rows()
    assert len(live["invitation_tokens"]) == 3
    assert store.rebuilt_rows() == live
    report = rebuild(store.location, store.store.mapper)
    assert report.swapped and report.differences == []
    assert store.live_rows() == live


def test_a_projection_from_before_the_tokens_table_gets_every_generation(
    invitations: Invitations,
) -> None:
    """Projections from before this release have no tokens table: the first start of
    this release creates it and writes every generation issued back then (read from
    the store), so a plain rebuild then finds nothing to differ."""
    store = invitations.store
    expected = store.live_rows()["invitation_tokens"]
    with connect(store.location) as db, db.transaction():
        db.execute(f'DROP TABLE "{LIVE.invitation_tokens}"')  # as an older projection is
    third = resend(store.app, invitations.acme, invitations.ids["alice"])  # one more since
    project(store)  # the new release starts
    live = store.live_rows()["invitation_tokens"]
    assert {k: v for k, v in live.items() if k in expected} == expected
    assert len(live) == 4
    with ReadModel(store.location) as reads:
        matches = [reads.token_match(invitations.tokens[k]) for k in ("alice-1", "alice-2")]
        assert [m.current for m in matches if m is not None] == [False, False]
        latest = reads.token_match(third)
        assert latest is not None and latest.current
    report = rebuild(store.location, store.store.mapper)
    assert report.swapped and report.differences == []
    project(store)  # started again: nothing left to fill
    assert store.live_rows()["invitation_tokens"] == live


def test_a_big_batch_writes_every_generation(any_store: Store) -> None:
    """Enough invitations in one batch for PostgreSQL's staged (COPY) path."""
    app = any_store.app
    org = app.register_organization(name="Big", slug="big", org_type="provider").id
    app.activate(organization_id=org)
    old_tokens = []
    for n in range(70):
        invitation = invite(app, org, f"user{n}")
        old_tokens.append(app.invitation_token(invitation, org))
        resend(app, org, invitation)
    project(any_store)
    with ReadModel(any_store.location) as reads:
        matches = [reads.token_match(token) for token in old_tokens]
        assert [m is not None and not m.current for m in matches] == [True] * 70
    live = any_store.live_rows()
    assert len(live["invitation_tokens"]) == 140
    assert any_store.rebuilt_rows() == live


# --- catch_up: read your writes without knowing their position --------------------------


def test_catch_up_waits_for_a_write_made_while_the_projector_was_stopped(
    any_store: Store,
) -> None:
    app = any_store.app
    registered = app.register_organization(name="Acme", slug="acme", org_type="provider")
    org = registered.id
    daemon = Daemon(any_store.env)
    try:
        wait_for(
            lambda: tracked_position(any_store) == registered.position, what="the first catch-up"
        )
        with ReadModel(any_store.location) as reads:
            code, err = daemon.terminate()
            assert code == 0, err
            invitation = invite(app, org, "alice")  # while no projector runs
            token = app.invitation_token(invitation, org)
            assert reads.head() == store_head(any_store) > reads.position()
            assert reads.token_match(token) is None
            daemon = Daemon(any_store.env)  # resumed
            reached = reads.catch_up(timeout=60)
            assert reached >= reads.head()
            match = reads.token_match(token)
            assert match is not None and match.current
            assert match.invitation.id == invitation
    finally:
        daemon.close()


def test_catch_up_times_out_when_no_projector_runs(invitations: Invitations) -> None:
    store = invitations.store
    resend(store.app, invitations.acme, invitations.ids["alice"])  # not projected
    with ReadModel(store.location) as reads:
        before = reads.position()
        with pytest.raises(ProjectionTimeout, match=f"is at {before}, not {reads.head()}"):
            reads.catch_up(timeout=0.2)
        assert reads.position() == before


def test_catch_up_returns_at_once_when_nothing_is_left(
    invitations: Invitations, reads: ReadModel
) -> None:
    assert reads.catch_up(timeout=0) == reads.head() == store_head(invitations.store)
    assert len(reads.invitations(ALL_ORGANIZATIONS)) == 2
