"""The fast paths of the catch-up give the same tables as the plain ones, on PostgreSQL.

* COPY staging (large groups) vs ``executemany`` (small groups): same rows, and a
  replay through either changes nothing (version guards).
* Read-ahead: a catch-up with it equals one without it; a poison event met in a
  read-ahead slice still stops the projection at the event before it.
* The bounded fetch window: a run of rolled-back ids longer than a batch is looked past.
* ``fast_event_id`` is the domain's ``event_id``, computed once per event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from a4c_domain.ids import event_id
from a4c_projector.dialects.connection import connect
from a4c_projector.engine import readahead
from a4c_projector.engine.projector import PoisonEvent
from a4c_projector.eventlog.source import head
from a4c_projector.maintenance.compare import snapshot_rows
from a4c_projector.readmodel import handlers, writer
from a4c_projector.readmodel.handlers import RowChange, fast_event_id
from a4c_projector.readmodel.tables import TableSet
from a4c_projector.readmodel.tracking import read_position
from tests.projector.conftest import Store, seed
from tests.support import wait_for


@settings(max_examples=50, deadline=None)
@given(originator=st.uuids(), version=st.integers(min_value=1, max_value=2**40))
def test_fast_event_id_is_the_domain_event_id(originator: uuid.UUID, version: int) -> None:
    assert fast_event_id(originator, version) == event_id(originator, version)


def test_an_events_id_is_computed_once_for_its_change_and_the_fold_ending_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def counting(originator: uuid.UUID, version: int) -> uuid.UUID:
        calls.append(version)
        return fast_event_id(originator, version)

    monkeypatch.setattr(handlers, "fast_event_id", counting)
    row, now = uuid.uuid4(), datetime.now(UTC)
    first = RowChange("invitations", row, 1, now, {"status": "pending"}, creates=True)
    later = RowChange("invitations", row, 2, now, {"status": "accepted"})
    folded = first.then(later)
    assert folded.event_id == later.event_id == event_id(row, 2)
    assert later.event_id is folded.event_id
    assert calls == [2]  # the public event, the token row and the folded row share it


def project(store: Store, suffix: str, **kwargs: Any) -> dict[str, Any]:
    """Catch up from 0 into the table set ``suffix``; its rows."""
    tables = TableSet(suffix)
    projector = store.projector(projection="p" + suffix, tables=tables, **kwargs)
    try:
        projector.catch_up()
        with projector.db.transaction():
            assert read_position(projector.db, "p" + suffix) == head(projector.db)
            return snapshot_rows(projector.db, tables)
    finally:
        projector.close()


def replay_from_zero(store: Store, suffix: str, **kwargs: Any) -> dict[str, Any]:
    """Move the position back to 0 and catch up again over the same tables."""
    with connect(store.location) as db, db.transaction():
        db.execute(
            "UPDATE projector_tracking SET position = 0 WHERE projection = %s", ("p" + suffix,)
        )
        db.execute(f'DELETE FROM "applied_ranges{suffix}"')
    return project(store, suffix, **kwargs)


def test_staged_writes_equal_row_at_a_time_writes_and_replay_is_a_no_op(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(pg_store.app, 30)
    monkeypatch.setattr(writer, "COPY_THRESHOLD", 10**9)
    row_at_a_time = project(pg_store, "__rows", batch_size=50)
    monkeypatch.setattr(writer, "COPY_THRESHOLD", 1)
    staged = project(pg_store, "__staged", batch_size=50)
    assert staged == row_at_a_time
    assert len(staged["organizations"]) == 30 and len(staged["invitations"]) == 30
    assert replay_from_zero(pg_store, "__staged", batch_size=7) == staged
    monkeypatch.setattr(writer, "COPY_THRESHOLD", 10**9)
    assert replay_from_zero(pg_store, "__staged", batch_size=7) == staged


def test_read_ahead_gives_the_same_tables(pg_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(pg_store.app, 25)
    started: list[int] = []
    original = readahead.ReadAhead.start

    def counting_start(self: readahead.ReadAhead, start: int, *args: Any) -> None:
        started.append(start)
        original(self, start, *args)

    monkeypatch.setattr(readahead.ReadAhead, "start", counting_start)
    with_read_ahead = project(pg_store, "__ahead", batch_size=9)
    assert len(started) >= 5  # it did read ahead, batch after batch
    monkeypatch.setattr(readahead.ReadAhead, "start", lambda self, *args: None)
    without = project(pg_store, "__plain", batch_size=9)
    assert with_read_ahead == without


def test_poison_in_a_read_ahead_slice_stops_before_it(pg_store: Store) -> None:
    seed(pg_store.app, 10)  # 40 events
    poisoned = 23
    with connect(pg_store.location) as db, db.transaction():
        db.execute(
            "UPDATE a4c_events SET topic = 'no.such.module:Event' WHERE notification_id = %s",
            (poisoned,),
        )
    projector = pg_store.projector(projection="poison", tables=TableSet("__poison"), batch_size=5)
    try:
        with pytest.raises(PoisonEvent) as caught:
            projector.catch_up()
        assert caught.value.notification_id == poisoned
        assert projector.position() == poisoned - 1
    finally:
        projector.close()


def test_a_run_of_rolled_back_ids_longer_than_a_batch_is_passed(pg_store: Store) -> None:
    seed(pg_store.app, 2)
    with psycopg.connect(pg_store.location.conninfo) as conn:
        table = pg_store.location.qualified_events_table
        sequence = conn.execute(
            "SELECT pg_get_serial_sequence(%s, 'notification_id')", (table,)
        ).fetchone()
        assert sequence is not None and sequence[0]
        conn.execute("SELECT nextval(%s) FROM generate_series(1, 40)", (sequence[0],))
        conn.commit()
    seed(pg_store.app, 2, prefix="after")
    projector = pg_store.projector(
        projection="gap", tables=TableSet("__gap"), batch_size=10, gap_grace=0.01
    )
    try:
        with connect(pg_store.location) as db:
            top = head(db)
        assert top > 40

        def reached() -> bool:
            projector.catch_up()
            return projector.position() == top

        wait_for(reached, timeout=30, what="the catch-up to pass the rolled-back ids")
        with projector.db.transaction():
            rows = snapshot_rows(projector.db, TableSet("__gap"))
        assert len(rows["organizations"]) == 4
    finally:
        projector.close()
