"""No skipped events under out-of-order commits (the gap guard), both insert modes.

Slow writers insert real domain events and sleep before committing, so notification ids
commit out of order; the projector runs live meanwhile. At the end the read model must
equal a from-scratch rebuild and the audit must find nothing missing. The deterministic
test shows that the naive "advance to the max id seen" rule does skip here, so these
tests can fail. A permanent gap is passed while a long write transaction elsewhere on
the server stays open; a gap held by a running writer of the events table never is.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from a4c_domain import Organization
from a4c_domain.errors import ConfigurationError
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.runner import Runner, RunnerOptions
from a4c_projector.eventlog.guard import FetchedRow, GapGuard
from a4c_projector.maintenance.audit import audit
from a4c_projector.readmodel.tables import TableSet
from tests.projector.conftest import Store, make_pg_store, run_cli
from tests.support import wait_for


class NaiveGuard(GapGuard):
    """Everything visible is taken: the bug every event store has shipped once."""

    def safe_prefix(self, rows: Sequence[FetchedRow], *args: Any, **kwargs: Any) -> int:
        return len(rows)


def stored_org_events(store: Store, slug: str) -> list[tuple[Any, ...]]:
    org = Organization(
        name=slug, slug=slug, org_type="partner", parent_id=None, tags=[], domain=None
    )
    org.activate()
    return [
        (s.originator_id, s.originator_version, s.topic, s.state)
        for s in (store.store.mapper.to_stored_event(e) for e in org.collect_events())
    ]


def slow_insert(
    store: Store, slug: str, lock_table: bool, pause: float, started: threading.Event | None = None
) -> None:
    location = store.location
    table = location.qualified_events_table
    with psycopg.connect(location.conninfo) as conn, conn.transaction():
        if lock_table:
            conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s)",
                stored_org_events(store, slug),
            )
        if started is not None:
            started.set()
        time.sleep(pause)


def test_naive_max_id_skips_but_guard_does_not(pg_store: Store) -> None:
    holder_started, release = threading.Event(), threading.Event()

    def holder() -> None:  # draws the lower ids and commits last
        location = pg_store.location
        with psycopg.connect(location.conninfo) as conn, conn.transaction():
            conn.cursor().executemany(
                f"INSERT INTO {location.qualified_events_table} "
                "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                stored_org_events(pg_store, "slow-one"),
            )
            holder_started.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    assert holder_started.wait(10)
    pg_store.app.register_organization(name="Fast", slug="fast-one", org_type="provider")

    naive = pg_store.projector(projection="naive", tables=TableSet("__naive"))
    naive.source.guard = NaiveGuard()
    guarded = pg_store.projector()
    try:
        assert naive.run_batch().applied == 1  # jumps over the open transaction's ids
        guarded_result = guarded.run_batch()
        assert guarded_result.applied == 0 and guarded_result.blocked
        release.set()
        thread.join()
        naive.run_batch()
        guarded.catch_up()
        with connect(pg_store.location) as db:
            assert [m.notification_id for m in audit(db, "naive", TableSet("__naive")).missing] == [
                1,
                2,
            ]
            assert audit(db, "a4c").complete
        assert guarded.position() == 3
    finally:
        release.set()
        naive.close()
        guarded.close()


@pytest.mark.parametrize("db_functions", ["y", ""], ids=["lock-free", "table-lock"])
def test_concurrent_slow_writers_live(pg_schema: str, db_functions: str) -> None:
    store = make_pg_store(pg_schema, POSTGRES_ENABLE_DB_FUNCTIONS=db_functions)
    runner = Runner(store.store, RunnerOptions(batch_size=7, poll_interval=0.05, gap_grace=0.05))
    loop = threading.Thread(target=runner.run)
    loop.start()
    rng = random.Random(7)
    try:
        writers = []
        for w in range(8):
            plan = [(f"w{w}-{n}", rng.random() * 0.15) for n in range(6)]

            def write(plan: list[tuple[str, float]] = plan) -> None:
                for slug, pause in plan:
                    slow_insert(store, slug, lock_table=not db_functions, pause=pause)

            writers.append(threading.Thread(target=write))
        fast = threading.Thread(
            target=lambda: [
                store.app.register_organization(name="F", slug=f"fast-{n}", org_type="provider")
                for n in range(40)
            ]
        )
        for t in [*writers, fast]:
            t.start()
        for t in [*writers, fast]:
            t.join()
        with connect(store.location) as db:
            head = int(
                db.execute(
                    f"SELECT max(notification_id) FROM {db.location.qualified_events_table}"
                )[0][0]
            )
        wait_for(lambda: runner.state.position >= head, what="projector to reach head")
    finally:
        runner.stop()
        loop.join(10)
        store.app.close()
    live = store.live_rows()
    assert len(live["organizations"]) == 8 * 6 + 40
    assert live == store.rebuilt_rows()
    with connect(store.location) as db:
        report = audit(db, "a4c")
    assert report.complete and report.checked == report.applied == 8 * 6 * 2 + 40


def test_a_long_writer_elsewhere_does_not_hold_up_a_gap_but_an_events_writer_does(
    pg_store: Store,
) -> None:
    """xids are cluster-wide: waiting for the xmin horizon alone would hold every gap for
    as long as any write transaction anywhere on the server. The fence's writers of the
    events table are what a gap waits for."""
    location = pg_store.location
    insert = (
        f"INSERT INTO {location.qualified_events_table} "
        "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"
    )
    with (
        psycopg.connect(location.conninfo) as elsewhere,
        psycopg.connect(location.conninfo) as events_writer,
    ):
        # A long transaction with an xid, writing something else entirely.
        elsewhere.execute("CREATE TEMP TABLE busy (n int)")
        elsewhere.execute("INSERT INTO busy VALUES (1)")
        # A permanent gap: ids drawn and rolled back.
        with psycopg.connect(location.conninfo) as aborted:
            aborted.cursor().executemany(insert, stored_org_events(pg_store, "rolled-back"))
            aborted.rollback()
        pg_store.app.register_organization(name="A", slug="after-gap", org_type="provider")
        projector = pg_store.projector(gap_grace=0.05)
        try:
            wait_for(
                lambda: projector.run_batch().position == 3,
                timeout=10,
                what="the projection past the permanent gap, the long writer still open",
            )
            # A gap held by a running writer of the events table is never passed.
            events_writer.cursor().executemany(insert, stored_org_events(pg_store, "held"))
            pg_store.app.register_organization(name="B", slug="behind", org_type="provider")
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                assert projector.run_batch().position == 3
                time.sleep(0.02)
            events_writer.commit()
            wait_for(lambda: projector.run_batch().position == 6, what="the held events")
        finally:
            projector.close()
        elsewhere.rollback()
    with connect(location) as db:
        report = audit(db, "a4c")
    assert report.complete and report.applied == 4


def test_a_sequence_that_draws_ids_out_of_order_is_refused(pg_store: Store) -> None:
    """With CACHE > 1 each session draws from a block of its own: no guard can tell a
    late low id from a gap, so the projector refuses to start, naming the fix."""
    pg_store.app.register_organization(name="A", slug="a", org_type="provider")
    table = pg_store.location.qualified_events_table
    with psycopg.connect(pg_store.location.conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT pg_get_serial_sequence(%s, 'notification_id')", (table,))
        found = row.fetchone()
        assert found is not None
        conn.execute(f"ALTER SEQUENCE {found[0]} CACHE 20")
    projector = pg_store.projector()
    try:
        with pytest.raises(ConfigurationError, match=r"CACHE 20.*CACHE 1"):
            projector.db  # noqa: B018 - the first connection checks the store
    finally:
        projector.close()
    code, _, err = run_cli(pg_store.env, "status")
    assert code == 2 and "CACHE 20" in err
