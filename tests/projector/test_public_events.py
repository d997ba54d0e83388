"""The public-events read model: one row per public event, in position order, exactly the
store's events in their public form, written with the tracking position.

The expected feed is computed straight from the event store (every notification decoded
and mapped by :func:`a4c_domain.public_form`, organizations found from the events
themselves), independently of the projector; the projector's table, read through
``ReadModel.public_events``, must equal it however it was batched, crashed, rebuilt or
backfilled.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a4c_domain import ALL_ORGANIZATIONS, Invitation, OnboardingApplication, Organization
from a4c_domain.base import DomainAggregate
from a4c_domain.public_events import Internal, form_of, organization_id_of, public_form
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import PoisonEvent
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.maintenance.audit import audit
from a4c_projector.maintenance.rebuild import rebuild
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel import public_events
from a4c_projector.readmodel.deadletters import list_parked
from tests.projector.conftest import Store, assert_complete, catch_up_past_gaps, seed
from tests.projector.test_properties import apply, commands
from tests.servers.postgres import fresh_schema, postgres_env
from tests.support import TOKEN_SECRET

Feed = list[tuple[int, str]]


def catch_up(store: Store, **options: Any) -> None:
    """A projector on ``store`` caught up past every gap, then closed."""
    projector = store.projector(**options)
    try:
        catch_up_past_gaps(projector)
    finally:
        projector.close()


def expected_feed(app: OnboardingApplication, leave_out: frozenset[UUID] = frozenset()) -> Feed:
    """Every public event of the store in notification order, mapped directly (but the
    events of the aggregates ``leave_out``)."""
    slugs: dict[UUID, str] = {}
    invitations: dict[UUID, UUID] = {}
    feed: Feed = []
    start = 1
    while batch := app.recorder.select_notifications(start=start, limit=500):
        for notification in batch:
            event = app.mapper.to_domain_event(notification)
            assert isinstance(event, DomainAggregate.Event)
            if isinstance(form_of(type(event)), Internal) or event.originator_id in leave_out:
                continue
            if isinstance(event, Organization.Registered):
                slugs[event.originator_id] = event.slug
            if isinstance(event, Invitation.Invited):
                invitations[event.originator_id] = event.organization_id
            organization = organization_id_of(event) or invitations[event.originator_id]
            form = public_form(
                event, organization_id=organization, organization_slug=slugs[organization]
            )
            assert form is not None
            feed.append((notification.id, form.model_dump_json()))
        start = batch[-1].id + 1
    return feed


def projected_feed(store: Store, **filters: Any) -> Feed:
    with ReadModel(store.location) as read_model:
        return read_model.public_events(0, 10**6, **filters)


def every_kind_of_event(app: OnboardingApplication) -> None:
    """Each public type at least once, over two organizations."""
    scope = ALL_ORGANIZATIONS
    acme = app.register_organization(
        name="Acme", slug="acme", org_type="provider", domain="acme.example.com"
    )
    app.configure_dns(
        organization_id=acme.id, fqdn="acme.example.com", target="lb.example.com", record_id="r1"
    )
    app.verify_dns(organization_id=acme.id)
    app.activate(organization_id=acme.id)
    ada = app.invite(
        organization_id=acme.id,
        email="ada@example.com",
        role="admin",
        first_name="A",
        last_name="L",
    )
    app.record_email_sent(
        organization_id=scope, invitation_id=ada.id, token_generation=1, message_id="m"
    )
    app.record_email_failed(
        organization_id=scope, invitation_id=ada.id, token_generation=1, reason="x"
    )
    app.reissue_token(organization_id=scope, invitation_id=ada.id, token_generation=2)
    token = app.invitation_token(ada.id, scope)
    app.accept_invitation(organization_id=scope, invitation_id=ada.id, token=token, user_id="u1")
    soon = datetime.now(UTC) + timedelta(seconds=1)  # within the clock tolerance: expires now
    cy = app.invite(
        organization_id=acme.id, email="cy@example.com", role="member", first_name="C",
        last_name="Y", expires_at=soon,
    )  # fmt: skip
    app.expire_invitation(organization_id=scope, invitation_id=cy.id)
    beta = app.register_organization(name="Beta", slug="beta", org_type="partner")
    app.invite(
        organization_id=beta.id,
        email="bo@example.com",
        role="member",
        first_name="B",
        last_name="O",
    )
    app.remove_dns(organization_id=beta.id)
    app.deactivate(organization_id=beta.id, reason="cancelled", failed_step=None)  # revokes bo


def test_one_row_per_public_event_in_position_order(any_store: Store) -> None:
    every_kind_of_event(any_store.app)
    projector = any_store.projector(batch_size=3)  # many small batches, as live
    try:
        catch_up_past_gaps(projector)
    finally:
        projector.close()
    feed = projected_feed(any_store)
    assert feed == expected_feed(any_store.app)
    assert [p for p, _ in feed] == sorted(p for p, _ in feed)
    types = [json.loads(body)["type"] for _, body in feed]
    assert len(set(types)) == 13
    assert_complete(any_store)  # live equals a rebuild from scratch, audit clean


def test_a_big_batch_writes_every_public_event(any_store: Store) -> None:
    """A catch-up batch of many public events (PostgreSQL: staged with COPY)."""
    seed(any_store.app, 30)  # 150 events, 120 of them public
    projector = any_store.projector()
    try:
        assert projector.run_batch().applied == 150
    finally:
        projector.close()
    feed = projected_feed(any_store)
    assert len(feed) == 120 and feed == expected_feed(any_store.app)


def test_the_feed_is_filtered_and_paged(any_store: Store) -> None:
    every_kind_of_event(any_store.app)
    catch_up(any_store)
    feed = projected_feed(any_store)
    beta = json.loads(next(b for _, b in feed if '"slug":"beta"' in b))["organization"]["id"]
    by_org = projected_feed(any_store, organization_id=UUID(beta))
    assert by_org == [(p, b) for p, b in feed if json.loads(b)["organization"]["id"] == beta]
    assert {json.loads(b)["type"] for _, b in by_org} >= {"invitation.revoked"}
    wanted = frozenset({"invitation.accepted", "organization.activated"})
    assert projected_feed(any_store, types=wanted) == [
        (p, b) for p, b in feed if json.loads(b)["type"] in wanted
    ]
    assert projected_feed(any_store, types=frozenset()) == []
    with ReadModel(any_store.location) as read_model:
        pages, after = [], 0
        while page := read_model.public_events(after, 4):
            assert len(page) <= 4
            pages.extend(page)
            after = page[-1][0]
        assert pages == feed
        # range_start: from the first event at or after a time; after all: the end.
        times = [datetime.fromisoformat(json.loads(b)["occurred_at"]) for _, b in feed]
        middle = len(feed) // 2
        start = read_model.public_events_start(times[middle])
        assert start == feed[middle][0] - 1 or times[middle - 1] >= times[middle]
        elsewhere = times[middle].astimezone(timezone(timedelta(hours=-5)))  # same instant
        assert read_model.public_events_start(elsewhere) == start
        assert read_model.public_events(0, 1000, since=times[middle])[0][0] <= feed[middle][0]
        later = times[-1] + timedelta(seconds=1)
        assert read_model.public_events_start(later) == feed[-1][0]
        assert read_model.public_events(0, 10, since=later) == []
        assert read_model.public_events_start(times[0] - timedelta(days=1)) == feed[0][0] - 1


def test_rows_commit_with_the_position_and_a_replay_adds_nothing(any_store: Store) -> None:
    """A crash before the commit leaves neither position nor rows; the batch run again
    writes each row once."""
    every_kind_of_event(any_store.app)

    def crash(stage: str, position: int) -> None:
        if stage == "before_commit":
            raise RuntimeError("crash")

    projector = any_store.projector(fault=crash)
    try:
        with pytest.raises(RuntimeError, match="crash"):
            projector.run_batch()
        assert projector.position() == 0
    finally:
        projector.close()
    assert projected_feed(any_store) == []
    catch_up(any_store)
    assert projected_feed(any_store) == expected_feed(any_store.app)


def test_an_existing_projection_is_backfilled_when_the_projector_starts(any_store: Store) -> None:
    every_kind_of_event(any_store.app)
    projector = any_store.projector()
    try:
        position = catch_up_past_gaps(projector)
    finally:
        projector.close()
    any_store.app.register_organization(name="Later", slug="later", org_type="provider")
    with connect(any_store.location) as db, db.transaction():
        db.execute("DELETE FROM public_events")  # a projection from before the table
    projector = any_store.projector()
    try:
        assert projector.position() == position  # connecting backfilled up to it
        assert projected_feed(any_store) == [
            (p, b) for p, b in expected_feed(any_store.app) if p <= position
        ]
        catch_up_past_gaps(projector)
    finally:
        projector.close()
    assert projected_feed(any_store) == expected_feed(any_store.app)
    assert_complete(any_store)


def test_a_new_connection_looks_organizations_up_in_a_live_batch(any_store: Store) -> None:
    """Events of organizations and invitations an earlier connection saw: their slug and
    organization come from the read model (inside a live batch's single round trip)."""
    every_kind_of_event(any_store.app)
    catch_up(any_store)
    app, scope = any_store.app, ALL_ORGANIZATIONS
    acme = app.get_organization_by_slug("acme")
    dee = app.invite(
        organization_id=acme.id, email="dee@example.com", role="member", first_name="D",
        last_name="E",
    )  # fmt: skip
    projector = any_store.projector()  # knows nothing yet
    try:
        catch_up_past_gaps(projector)
        app.record_email_sent(
            organization_id=scope, invitation_id=dee.id, token_generation=1, message_id="m2"
        )
        app.deactivate(organization_id=acme.id, reason="done", failed_step=None)
    finally:
        projector.close()
    catch_up(any_store, batch_size=2)
    assert projected_feed(any_store) == expected_feed(any_store.app)


def test_forgetting_what_was_learnt_changes_nothing(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Organizations learnt are forgotten between batches past the limit: looked up again."""
    monkeypatch.setattr(public_events, "FACTS_LIMIT", 1)
    every_kind_of_event(sqlite_store.app)
    catch_up(sqlite_store, batch_size=2)
    assert projected_feed(sqlite_store) == expected_feed(sqlite_store.app)


def test_a_rebuild_swaps_in_an_equal_feed(any_store: Store) -> None:
    every_kind_of_event(any_store.app)
    catch_up(any_store, batch_size=2)
    report = rebuild(any_store.location, any_store.store.mapper)
    assert report.swapped and report.differences == []
    assert projected_feed(any_store) == expected_feed(any_store.app)


def stray_invitation(store: Store) -> UUID:
    """An invitation of an organization nobody registered (written around the
    application, as a buggy producer could): its public form has no organization."""
    nobody = UUID(int=7)
    invitation = Invitation(
        organization_id=nobody, email="x@example.com", role="member", first_name="X",
        last_name="Y", generation=1, token_hash="0" * 64,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
    invitation.revoke("stray")
    store.app.save(invitation)
    return invitation.id


def test_an_event_of_an_unknown_organization_is_poison(any_store: Store) -> None:
    every_kind_of_event(any_store.app)
    stray = stray_invitation(any_store)
    projector = any_store.projector()
    try:
        with pytest.raises(PoisonEvent, match="no organization known") as raised:
            catch_up_past_gaps(projector)
        assert raised.value.originator_id == stray
        assert projector.position() == raised.value.notification_id - 1
    finally:
        projector.close()
    assert projected_feed(any_store) == expected_feed(any_store.app, frozenset({stray}))


def test_with_dead_letters_it_is_parked_and_the_rest_flows(any_store: Store) -> None:
    every_kind_of_event(any_store.app)
    stray = stray_invitation(any_store)
    any_store.app.register_organization(name="After", slug="after", org_type="provider")
    catch_up(any_store, dead_letter=True)
    with connect(any_store.location) as db, db.transaction():
        parked = list_parked(db)
        report = audit(db, "a4c")
    assert {p.originator_id for p in parked} == {stray} and len(parked) == 2
    assert report.complete
    assert projected_feed(any_store) == expected_feed(any_store.app, frozenset({stray}))


# --- property: any command stream, projected in any batches, is the store's feed --------


def check_feed(env: dict[str, str], history: list[tuple[str, str, str]], batch: int) -> None:
    app = OnboardingApplication(env)
    store = Store(env, app, open_event_store(env))
    try:
        for command in history:
            apply(app, *command)
        projector = store.projector(batch_size=batch)
        try:
            while True:
                result = projector.run_batch()
                if result.size == 0 and not result.blocked:
                    break
                if result.size == 0:
                    time.sleep(0.05)  # a rolled-back insert's gap: wait out its grace
        finally:
            projector.close()
        assert projected_feed(store) == expected_feed(app)
    finally:
        app.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=commands, batch=st.integers(1, 6))
def test_any_command_stream_yields_the_stores_public_events(
    history: list[tuple[str, str, str]], batch: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SQLITE_DBNAME": str(Path(tmp) / "e.sqlite"), "A4C_TOKEN_SECRET": TOKEN_SECRET}
        check_feed(env, history, batch)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(history=commands, batch=st.integers(1, 6))
def test_any_command_stream_yields_the_stores_public_events_on_postgres(
    pg_server: str, history: list[tuple[str, str, str]], batch: int
) -> None:
    with fresh_schema(pg_server) as schema:
        check_feed(postgres_env(schema, A4C_TOKEN_SECRET=TOKEN_SECRET), history, batch)
