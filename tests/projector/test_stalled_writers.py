"""Writers that stall between drawing their notification id and writing their row.

``nextval`` (the column default) runs before a row's ``BEFORE INSERT`` triggers and
before the row is written, and a transaction gets its xid only at its first row write
(or at a draw the sequence WAL-logs, one in 32). A writer held up in between (a trigger
a DBA added, a throttled container, a lock wait) has drawn an id but no xid yet: the
xmin horizon says nothing about it, however long it stalls. Only its end, watched
through the lock it holds on the events table, may pass the gap it holds (see
:mod:`a4c_projector.eventlog.guard`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest

from a4c_domain.errors import ConfigurationError
from a4c_projector.dialects.connection import connect
from a4c_projector.eventlog.guard import GapGuard
from a4c_projector.maintenance.audit import audit
from a4c_projector.settings import load_settings
from tests.projector.conftest import (
    ROOT,
    Daemon,
    Store,
    assert_complete,
    make_pg_store,
    store_head,
    tracked_position,
)
from tests.projector.test_no_skip import stored_org_events
from tests.support import wait_for


def add_stall_trigger(store: Store, seconds_sql: str) -> None:
    """A ``BEFORE INSERT`` trigger on the events table sleeping ``seconds_sql`` per row."""
    table = store.location.qualified_events_table
    schema = store.env["POSTGRES_SCHEMA"]
    with psycopg.connect(store.location.conninfo, autocommit=True) as conn:
        conn.execute(
            f'CREATE FUNCTION "{schema}".stall() RETURNS trigger LANGUAGE plpgsql AS $$ '
            f"BEGIN PERFORM pg_sleep({seconds_sql}); RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER stall BEFORE INSERT ON {table} "
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".stall()'
        )


def backend_sleeping(store: Store, pid: int) -> bool:
    with psycopg.connect(store.location.conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
    return row is not None and row[0] == "PgSleep"


def raise_cache_and_leave_a_gap(store: Store) -> None:
    """``ALTER SEQUENCE ... CACHE 20``, then ids drawn and rolled back (a gap)."""
    location = store.location
    table = location.qualified_events_table
    with psycopg.connect(location.conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT pg_get_serial_sequence(%s, 'notification_id')", (table,))
        found = row.fetchone()
        assert found is not None
        conn.execute(f"ALTER SEQUENCE {found[0]} CACHE 20")
    with psycopg.connect(location.conninfo) as conn:
        conn.cursor().executemany(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s)",
            stored_org_events(store, "gone"),
        )
        conn.rollback()


def test_a_writer_stalled_after_drawing_its_id_is_never_skipped(pg_store: Store) -> None:
    # Only sessions that ask for it stall: the fast writer below does not.
    add_stall_trigger(
        pg_store, "coalesce(nullif(current_setting('a4c.stall', true), ''), '0')::float"
    )
    location = pg_store.location
    # The sequence WAL-logs (and so takes an xid) on the first of every 32 draws: draw
    # one first, so the stalled writer's draw is a plain one, with no xid.
    pg_store.app.register_organization(name="First", slug="first", org_type="provider")
    stalled_pid: list[int] = []

    def stalled_writer() -> None:
        with psycopg.connect(location.conninfo) as conn, conn.transaction():
            stalled_pid.append(conn.info.backend_pid)
            conn.execute("SET LOCAL a4c.stall = '3'")
            conn.cursor().executemany(
                f"INSERT INTO {location.qualified_events_table} "
                "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                stored_org_events(pg_store, "stalled"),
            )

    writer = threading.Thread(target=stalled_writer)
    writer.start()
    projector = pg_store.projector(gap_grace=0.05)
    try:
        # The stalled writer has drawn id 2 and sleeps in its trigger, with no xid yet.
        wait_for(lambda: bool(stalled_pid) and backend_sleeping(pg_store, stalled_pid[0]))
        pg_store.app.register_organization(name="Fast", slug="fast", org_type="provider")
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # many fences, each past the horizon
            assert projector.run_batch().position == 1, "moved past a stalled writer's id"
            time.sleep(0.02)
        writer.join(30)
        wait_for(lambda: projector.run_batch().position == store_head(pg_store))
    finally:
        writer.join(30)
        projector.close()
    with connect(location) as db:
        report = audit(db, "a4c")
    assert report.complete and report.applied == store_head(pg_store)


def test_a_grace_of_zero_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="PROJECTOR_GAP_GRACE: must be greater than 0"):
        load_settings({"PROJECTOR_GAP_GRACE": "0"})
    with pytest.raises(ValueError, match="grace"):
        GapGuard(grace=0)


def test_a_sequence_cache_raised_while_running_is_noticed_at_the_next_fence(
    pg_store: Store,
) -> None:
    """The CACHE check at start is not enough: an ALTER SEQUENCE can come later."""
    pg_store.app.register_organization(name="A", slug="a", org_type="provider")
    projector = pg_store.projector(gap_grace=0.05)
    try:
        assert projector.run_batch().position == 1
        raise_cache_and_leave_a_gap(pg_store)
        pg_store.app.register_organization(name="B", slug="b", org_type="provider")
        with pytest.raises(ConfigurationError, match=r"CACHE 20.*CACHE 1"):
            wait_for(lambda: projector.run_batch().position > 1, timeout=5)
    finally:
        projector.close()


WRITER = textwrap.dedent(
    """
    import sys
    from a4c_domain import OnboardingApplication
    from tests.projector.conftest import TOKEN_SECRET
    from tests.servers.postgres import postgres_env

    schema, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    env = postgres_env(schema, A4C_TOKEN_SECRET=TOKEN_SECRET, POSTGRES_ENABLE_DB_FUNCTIONS="y")
    app = OnboardingApplication(env)
    for n in range(count):
        org = app.register_organization(
            name=f"{name} {n}", slug=f"{name}-{n}", org_type="provider"
        )
        app.activate(organization_id=org.id)
    app.close()
    """
)


@pytest.mark.slow
def test_stress_randomly_stalled_lock_free_writers_against_the_live_daemon(
    pg_schema: str,
) -> None:
    """Several writer processes in lock-free mode, every insert stalled after ``nextval``
    for a random time (up to 2.5 times the grace), the real daemon following:
    it ends equal to a rebuild, with a clean audit."""
    store = make_pg_store(pg_schema, POSTGRES_ENABLE_DB_FUNCTIONS="y")
    store.app.register_organization(name="Seed", slug="seed", org_type="provider")
    add_stall_trigger(store, "random() * 0.5")
    writers, per_writer = 4, 8
    daemon = Daemon(store.env, PROJECTOR_GAP_GRACE="0.2", PROJECTOR_BATCH_SIZE="5")
    try:
        daemon.wait_serving()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, pg_schema, f"w{w}", str(per_writer)],
                cwd=ROOT,
                env=env,
            )
            for w in range(writers)
        ]
        for proc in procs:
            assert proc.wait(120) == 0
        wait_for(
            lambda: tracked_position(store) == store_head(store),
            timeout=30,
            what="the daemon at the head",
        )
        code, err = daemon.terminate()
        assert code == 0, err
    finally:
        daemon.close()
    assert store_head(store) == 1 + writers * per_writer * 2
    assert_complete(store)
    store.app.close()


def test_the_daemon_stops_with_exit_2_naming_a_cache_raised_while_it_runs(
    pg_store: Store,
) -> None:
    pg_store.app.register_organization(name="A", slug="a", org_type="provider")
    daemon = Daemon(pg_store.env, PROJECTOR_GAP_GRACE="0.05")
    try:
        wait_for(lambda: tracked_position(pg_store) == 1, what="the daemon at the head")
        raise_cache_and_leave_a_gap(pg_store)
        pg_store.app.register_organization(name="B", slug="b", org_type="provider")
        code, err = daemon.wait(30)
    finally:
        daemon.close()
    assert code == 2 and "CACHE 20" in err and "CACHE 1" in err, err
    assert tracked_position(pg_store) == 1
