"""Poison events: stop by default, or park the aggregate and go on; list and retry.

Also an event whose row the read model refuses (a constraint): the batch is written
again event by event to find it, and it is treated as poison like any other.

The poison is honest: a stored ``DNSConfigured`` whose payload decodes but lacks
``fqdn``, so the projector's handler fails on it (see ``conftest.write_poison``); the
cause is fixed by restoring the payload the domain wrote.
"""

from __future__ import annotations

import json
import threading

import psycopg
import pytest

from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import ONE_BY_ONE_LIMIT, PoisonEvent
from a4c_projector.maintenance.audit import audit
from a4c_projector.maintenance.rebuild import rebuild
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel.deadletters import ParkedEvent, list_parked, retry_parked
from a4c_projector.readmodel.tables import ensure_schema
from tests.projector.conftest import (
    Daemon,
    Store,
    assert_complete,
    bulk_organizations,
    run_cli,
    seed,
    store_head,
    tracked_position,
    write_poison,
)
from tests.support import wait_for

POISON_TOPIC = "a4c_domain.organization:Organization.DNSConfigured"


def parked_now(store: Store) -> list[ParkedEvent]:
    with connect(store.location) as db, db.transaction():
        return list_parked(db)


def test_by_default_the_daemon_stops_at_the_poison_naming_it(pg_store: Store) -> None:
    seed(pg_store.app, 2)  # notification ids 1-10
    poison = write_poison(pg_store)  # 11 (fine), 12 (poison), 13, 14
    seed(pg_store.app, 1, prefix="later")
    daemon = Daemon(pg_store.env)
    try:
        code, err = daemon.wait(timeout=30)
        assert code == 1
    finally:
        daemon.close()
    assert "notification 12" in err and POISON_TOPIC in err and str(poison.organization_id) in err
    assert tracked_position(pg_store) == 11  # everything before it, nothing after
    with ReadModel(pg_store.location) as reads:
        poisoned = reads.organization(poison.organization_id)
        assert poisoned is not None and poisoned.version == 1
        assert reads.organization_by_slug("later-0") is None


def test_dead_letter_parks_the_aggregate_goes_on_and_retry_applies_after_the_fix(
    pg_store: Store,
) -> None:
    seed(pg_store.app, 2)
    poison = write_poison(pg_store)
    seed(pg_store.app, 2, prefix="later")
    daemon = Daemon(pg_store.env, PROJECTOR_DEAD_LETTER="true")
    try:
        wait_for(lambda: tracked_position(pg_store) == store_head(pg_store), what="catch-up")
        with ReadModel(pg_store.location) as reads:
            row = reads.organization(poison.organization_id)
            assert row is not None and row.version == 1
            assert reads.organization_by_slug("later-1") is not None  # the others went on
        assert daemon.metrics()["a4c_projector_parked_events"] == 3.0

        code, out, _ = run_cli(pg_store.env, "dead-letter", "list")
        parked = json.loads(out)
        assert code == 0 and [p["notification_id"] for p in parked] == [12, 13, 14]
        assert {p["originator_id"] for p in parked} == {str(poison.organization_id)}
        assert parked[0]["topic"] == POISON_TOPIC and "fqdn" in parked[0]["error"]
        assert "earlier event" in parked[1]["error"]

        code, out, _ = run_cli(pg_store.env, "dead-letter", "retry")
        assert code == 1 and "fqdn" in json.loads(out)[0]["error"]  # not fixed yet
        assert len(parked_now(pg_store)) == 3

        poison.repair(pg_store)
        # A new event of the parked aggregate while it is parked: parked behind the others.
        view = pg_store.app.deactivate(
            organization_id=poison.organization_id, reason="test", failed_step=None
        )
        position = view.position
        assert position is not None
        wait_for(lambda: tracked_position(pg_store) >= position, what="the new event")
        code, out, _ = run_cli(pg_store.env, "dead-letter", "retry")  # daemon still running
        assert code == 0 and json.loads(out) == [
            {"originator_id": str(poison.organization_id), "applied": 4, "error": None}
        ]
        assert parked_now(pg_store) == []
        # After the retry the aggregate is no longer parked: its next event applies live.
        view = pg_store.app.remove_dns(organization_id=poison.organization_id)
        next_position = view.position
        assert next_position is not None
        wait_for(lambda: tracked_position(pg_store) >= next_position, what="the next event")
        with ReadModel(pg_store.location) as reads:
            row = reads.organization(poison.organization_id)
            assert row is not None and row.version == view.version
            assert (row.status, row.dns_status) == ("deactivated", "removed")
        assert daemon.metrics()["a4c_projector_parked_events"] == 0.0
        code, err = daemon.terminate()
        assert code == 0, err
    finally:
        daemon.close()
    assert_complete(pg_store)


def test_retry_waits_for_the_batch_in_flight_and_takes_what_it_parked(pg_store: Store) -> None:
    poison = write_poison(pg_store)
    parking = pg_store.projector(dead_letter=True)
    parking.catch_up()
    parking.close()
    poison.repair(pg_store)
    pg_store.app.deactivate(organization_id=poison.organization_id, reason="r", failed_step=None)

    # A live batch parks the new event (its aggregate is parked) and is held before commit.
    in_commit, release = threading.Event(), threading.Event()

    def hold(stage: str, _nid: int) -> None:
        if stage == "before_commit":
            in_commit.set()
            release.wait(30)

    batch = pg_store.projector(dead_letter=True, fault=hold)
    batch_thread = threading.Thread(target=batch.run_batch)
    batch_thread.start()
    outcomes = []
    retry_db = connect(pg_store.location, purpose="retry")
    try:
        assert in_commit.wait(10)
        retry_thread = threading.Thread(
            target=lambda: outcomes.extend(retry_parked(retry_db, pg_store.store.mapper))
        )
        retry_thread.start()
        with psycopg.connect(pg_store.location.conninfo, autocommit=True) as admin:
            wait_for(
                lambda: (
                    admin.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE application_name = %s",
                        (pg_store.location.application_name("retry"),),
                    ).fetchone()
                    == ("Lock",)
                ),
                what="the retry to wait for the batch",
            )
        assert retry_thread.is_alive()
        release.set()
        batch_thread.join(10)
        retry_thread.join(10)
    finally:
        release.set()
        batch.close()
        retry_db.close()
    # The retry saw what the batch parked: versions 2-5, nothing left behind.
    assert [(o.applied, o.error) for o in outcomes] == [(4, None)]
    with connect(pg_store.location) as db:
        assert list_parked(db) == []
    with ReadModel(pg_store.location) as reads:
        row = reads.organization(poison.organization_id)
        assert row is not None and (row.version, row.status) == (5, "deactivated")
    assert_complete(pg_store)


def test_sqlite_parks_and_retries_too(sqlite_store: Store) -> None:
    poison = write_poison(sqlite_store)
    seed(sqlite_store.app, 1)
    strict = sqlite_store.projector()
    with pytest.raises(PoisonEvent) as stopped:
        strict.catch_up()
    strict.close()
    assert (stopped.value.notification_id, stopped.value.topic) == (2, POISON_TOPIC)
    assert stopped.value.originator_id == poison.organization_id

    lenient = sqlite_store.projector(dead_letter=True)
    lenient.catch_up()
    lenient.close()
    with connect(sqlite_store.location) as db:
        assert [p.notification_id for p in list_parked(db)] == [2, 3, 4]
        assert retry_parked(db, sqlite_store.store.mapper)[0].error is not None
        assert len(list_parked(db)) == 3  # a failed retry changes nothing
        poison.repair(sqlite_store)
        assert [o.applied for o in retry_parked(db, sqlite_store.store.mapper)] == [3]
        assert list_parked(db) == []
    assert_complete(sqlite_store)


# --- an event the read model refuses ---------------------------------------------------


def refuse_name(store: Store, name: str) -> None:
    """A read-model constraint that refuses one organization name (as a DBA might add):
    the event decodes and handles fine, only its row cannot be written."""
    with connect(store.location) as db, db.transaction():
        ensure_schema(db)
        if db.dialect == "postgres":
            db.execute(f"ALTER TABLE organizations ADD CONSTRAINT refused CHECK (name <> '{name}')")
        else:  # SQLite cannot add a constraint to a table: the same refusal as a trigger
            db.execute(
                "CREATE TRIGGER refused BEFORE INSERT ON organizations "
                f"WHEN NEW.name = '{name}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


def allow_all_names(store: Store) -> None:
    with connect(store.location) as db, db.transaction():
        if db.dialect == "postgres":
            db.execute("ALTER TABLE organizations DROP CONSTRAINT refused")
        else:
            db.execute("DROP TRIGGER refused")


def register_refused(store: Store, backlog: int = 0) -> int:
    """``backlog`` bulk orgs, orgs 0-1, the refused org (registered, activated), one more;
    the refused registration's id."""
    written = bulk_organizations(store, backlog) if backlog else 0
    seed(store.app, 2)
    refused = store.app.register_organization(
        name="Refused", slug="refused", org_type="provider", tags=[]
    )
    store.app.activate(organization_id=refused.id)
    seed(store.app, 1, prefix="after")
    return written + 11


def test_a_row_the_read_model_refuses_stops_the_projection_at_its_event(
    any_store: Store,
) -> None:
    refuse_name(any_store, "Refused")
    refused_id = register_refused(any_store)
    projector = any_store.projector(batch_size=100)
    try:
        with pytest.raises(PoisonEvent) as caught:
            projector.catch_up()
        assert caught.value.notification_id == refused_id
        assert "Organization.Registered" in caught.value.topic
        assert "refused" in str(caught.value).lower()
        assert projector.position() == refused_id - 1  # everything before it, as one batch
        with ReadModel(any_store.location) as reads:
            assert reads.organization_by_slug("org-1") is not None
            assert reads.organization_by_slug("after-0") is None
    finally:
        projector.close()


def test_a_row_the_read_model_refuses_is_parked_with_its_aggregate_and_retried(
    any_store: Store,
) -> None:
    refuse_name(any_store, "Refused")
    # Far into a large batch: the search for it goes on in short batches.
    refused_id = register_refused(any_store, backlog=400)
    projector = any_store.projector(batch_size=5000, dead_letter=True)
    try:
        sizes = []
        while (result := projector.run_batch()).size:
            sizes.append(result.size)
        assert result.position == store_head(any_store)
    finally:
        projector.close()
    # The failed batch (all 1,617 events) is redone in short one-by-one batches.
    assert sizes == [ONE_BY_ONE_LIMIT] * 3 + [store_head(any_store) - 3 * ONE_BY_ONE_LIMIT]
    parked = parked_now(any_store)
    assert [p.notification_id for p in parked] == [refused_id, refused_id + 1]
    assert "refused" in parked[0].error.lower()
    with ReadModel(any_store.location) as reads:
        assert reads.organization_by_slug("refused") is None
        assert reads.organization_by_slug("after-0") is not None  # the others went on
    with connect(any_store.location) as db:
        report = audit(db, "a4c")
    assert report.complete and report.parked == 2  # every event applied or parked
    allow_all_names(any_store)
    with connect(any_store.location) as db:
        outcomes = retry_parked(db, any_store.store.mapper)
    assert [(o.applied, o.error) for o in outcomes] == [(2, None)]
    with ReadModel(any_store.location) as reads:
        refused = reads.organization_by_slug("refused")
        assert refused is not None and refused.status == "active"
    assert_complete(any_store)


def test_a_rebuild_parks_what_the_live_projection_parked_or_stops_naming_it(
    pg_store: Store,
) -> None:
    seed(pg_store.app, 2)
    write_poison(pg_store)  # 12 cannot be applied; 13 and 14 park behind it
    seed(pg_store.app, 1, prefix="later")
    live = pg_store.projector(dead_letter=True)
    try:
        live.catch_up()
    finally:
        live.close()
    assert [p.notification_id for p in parked_now(pg_store)] == [12, 13, 14]
    with pytest.raises(PoisonEvent, match="notification 12"):
        rebuild(pg_store.location, pg_store.store.mapper)  # without dead letters
    report = rebuild(pg_store.location, pg_store.store.mapper, dead_letter=True)
    assert report.swapped and report.differences == []
    assert [p.notification_id for p in parked_now(pg_store)] == [12, 13, 14]
    with connect(pg_store.location) as db:
        assert audit(db, "a4c").complete
