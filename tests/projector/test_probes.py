"""``/health``, ``/ready`` and ``/metrics`` of a real daemon, over its real socket.

Each way readiness must fail is produced for real and then undone:

* the loop stalls (its batch blocked on the tracking row the test locks): the heartbeat
  ages, ``/health`` and ``/ready`` turn red, and green again when the lock goes;
* the loop is alive but an event stays unapplied (held behind a lower id that an open
  transaction owns): only ``/ready`` turns red, once the event is older than
  ``PROJECTOR_READY_MAX_AGE``; the metrics show the lag in events and seconds;
* the LISTEN connection dies and cannot come back (its role may not log in): ``/ready``
  turns red while the loop keeps applying by polling; green again once it can;
* the probes' own connection dies and cannot come back: ``database_unreachable``, and
  not a word of the driver's error text;
* a standby replica (not holding the lock) is not ready.

Red answers carry reason codes. The server itself (a4c_service.probes) ignores the query
string and drops a client that sends nothing once the socket timeout runs out.
"""

from __future__ import annotations

import socket
import threading
import time

import psycopg

from a4c_domain import Organization
from a4c_projector.dialects.location import Location
from a4c_projector.settings import ProjectorSettings
from a4c_service.probes import DEFAULT_TIMEOUT
from tests.projector.conftest import (
    Daemon,
    Store,
    assert_complete,
    make_pg_store,
    seed,
)
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET, wait_for


def insert_raw(location: Location, conn: psycopg.Connection[object], slug: str) -> None:
    """A registered organization written straight into the events table (no commit)."""
    from a4c_projector.eventlog.store import open_event_store

    mapper = open_event_store(postgres_env(location.schema, A4C_TOKEN_SECRET=TOKEN_SECRET)).mapper
    org = Organization(
        name=slug, slug=slug, org_type="partner", parent_id=None, tags=[], domain=None
    )
    stored = [mapper.to_stored_event(e) for e in org.collect_events()]
    conn.cursor().executemany(
        f"INSERT INTO {location.qualified_events_table} "
        "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
        [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored],
    )


def reasons(daemon: Daemon) -> list[str]:
    return list(daemon.get("/ready")[1].get("reasons", ["no answer"]))


def test_a_stalled_loop_turns_health_and_readiness_red(pg_store: Store) -> None:
    seed(pg_store.app, 2)
    daemon = Daemon(pg_store.env, PROJECTOR_HEARTBEAT_MAX_AGE="1", PROJECTOR_READY_MAX_AGE="60")
    try:
        wait_for(lambda: daemon.get("/ready")[1].get("lag_events") == 0, what="catch-up")
        with psycopg.connect(pg_store.location.conninfo) as blocker:
            blocker.execute(
                f'SELECT 1 FROM "{pg_store.location.schema}".projector_tracking '
                "WHERE projection = 'a4c' FOR UPDATE"
            )
            wait_for(lambda: daemon.get("/health")[0] == 503, what="/health to turn red")
            status, body = daemon.get("/ready")
            assert status == 503 and body["lag_events"] == 0
            assert body["reasons"] == ["heartbeat_stale"]
            assert body["status"] == "not_ready: heartbeat_stale"
            blocker.rollback()
        wait_for(lambda: daemon.get("/ready")[0] == 200, what="ready again")
        assert daemon.get("/health")[0] == 200
        code, err = daemon.terminate()
        assert code == 0, err
    finally:
        daemon.close()


def test_an_old_unapplied_event_turns_readiness_red_and_shows_in_metrics(
    pg_store: Store,
) -> None:
    views = seed(pg_store.app, 2)
    daemon = Daemon(pg_store.env, PROJECTOR_READY_MAX_AGE="1")
    holder_started, release = threading.Event(), threading.Event()

    def holder() -> None:  # takes the next id and keeps its transaction open
        with psycopg.connect(pg_store.location.conninfo) as conn:
            insert_raw(pg_store.location, conn, "held")
            holder_started.set()
            release.wait(60)

    thread = threading.Thread(target=holder)
    try:
        wait_for(lambda: daemon.get("/ready")[1].get("lag_events") == 0, what="catch-up")
        before = daemon.metrics()
        assert before["a4c_projector_position"] == views[-1].position
        assert before["a4c_projector_head"] == views[-1].position
        assert before["a4c_projector_lag_events"] == 0.0
        assert before["a4c_projector_lag_seconds"] == 0.0
        assert before["a4c_projector_active"] == 1.0
        assert before["a4c_projector_parked_events"] == 0.0
        thread.start()
        assert holder_started.wait(10)
        late = pg_store.app.register_organization(name="Late", slug="late", org_type="provider")
        wait_for(lambda: daemon.get("/ready")[0] == 503, what="/ready to turn red")
        assert daemon.get("/health")[0] == 200  # the loop itself is fine
        assert reasons(daemon) == ["lag_too_high"]
        during = daemon.metrics()
        assert during["a4c_projector_position"] == views[-1].position
        assert during["a4c_projector_head"] == late.position
        assert during["a4c_projector_lag_events"] == 1.0  # the open one is not committed
        assert during["a4c_projector_lag_seconds"] > 1.0
        release.set()
        thread.join(10)
        wait_for(lambda: daemon.get("/ready")[0] == 200, what="ready again")
        after = daemon.metrics()
        assert after["a4c_projector_position"] == after["a4c_projector_head"] == late.position
        assert after["a4c_projector_lag_events"] == 0.0
        # Every event went through a batch of this process: the histogram adds up.
        assert after["a4c_projector_batch_events_sum"] == late.position
        batches = after["a4c_projector_batch_events_count"]
        assert 2 <= batches == after["a4c_projector_batch_duration_seconds_count"]
        assert after["a4c_projector_batch_duration_seconds_sum"] > 0
        code, err = daemon.terminate()
        assert code == 0, err
    finally:
        release.set()
        if thread.is_alive():
            thread.join(10)
        daemon.close()
    assert_complete(pg_store)


def daemon_as(role: str, schema: str) -> tuple[Store, Daemon]:
    """A daemon connecting as ``role``, over a store holding one seeded organization."""
    store = make_pg_store(schema, POSTGRES_USER=role)
    seed(store.app, 1)
    store.app.close()
    return store, Daemon(store.env)


def test_a_dead_listen_connection_turns_readiness_red_until_it_is_back(
    pg_schema: str, pg_server: str, own_role: str
) -> None:
    store, daemon = daemon_as(own_role, pg_schema)
    listen_name = store.location.application_name("listen")
    try:
        wait_for(lambda: daemon.get("/ready")[1].get("listening") is True, what="listening")
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'ALTER ROLE "{own_role}" NOLOGIN')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (listen_name,),
            )
            wait_for(lambda: daemon.get("/ready")[0] == 503, what="/ready to turn red")
            assert reasons(daemon) == ["listen_down"]
            assert daemon.get("/health")[0] == 200
            # Meanwhile the loop polls: a new event is still applied.
            with psycopg.connect(pg_server) as writer:
                writer.execute(f'SET search_path TO "{pg_schema}"')
                insert_raw(store.location, writer, "while-deaf")
            caught_up = (
                f'SELECT (SELECT position FROM "{pg_schema}".projector_tracking) = '
                f'(SELECT max(notification_id) FROM "{pg_schema}".a4c_events)'
            )
            wait_for(lambda: admin.execute(caught_up).fetchone() == (True,), what="polling")
            assert daemon.get("/ready")[0] == 503  # still deaf: still red
            admin.execute(f'ALTER ROLE "{own_role}" LOGIN')
        wait_for(lambda: daemon.get("/ready")[0] == 200, what="ready again")
        assert daemon.get("/ready")[1]["listening"] is True
        assert daemon.metrics()["a4c_projector_errors_total{kind=listen}"] >= 1
        code, err = daemon.terminate()
        assert code == 0, err
    finally:
        daemon.close()


def test_the_probes_connection_lost_for_good_reads_database_unreachable_and_no_more(
    pg_schema: str, pg_server: str, own_role: str
) -> None:
    store, daemon = daemon_as(own_role, pg_schema)
    try:
        wait_for(lambda: daemon.get("/ready")[0] == 200, what="ready")
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'ALTER ROLE "{own_role}" NOLOGIN')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (store.location.application_name("probes"),),
            )
            wait_for(lambda: daemon.get("/ready")[0] == 503, what="/ready to turn red")
            body = daemon.get("/ready")[1]
            assert body["reasons"] == ["database_unreachable"]
            assert body["status"] == "not_ready: database_unreachable"
            text = str(body).lower()
            assert own_role not in text and "login" not in text and "error" not in text
            admin.execute(f'ALTER ROLE "{own_role}" LOGIN')
        wait_for(lambda: daemon.get("/ready")[0] == 200, what="ready again")
    finally:
        daemon.close()


def test_a_standby_replica_is_not_ready(pg_store: Store) -> None:
    seed(pg_store.app, 1)
    replicas = [Daemon(pg_store.env), Daemon(pg_store.env)]
    try:
        for replica in replicas:
            replica.wait_serving()

        def role(replica: Daemon) -> float | None:
            return replica.metrics().get("a4c_projector_active")

        wait_for(lambda: sorted(role(r) or 0.0 for r in replicas) == [0.0, 1.0], what="roles")
        active = next(r for r in replicas if role(r) == 1.0)
        standby = next(r for r in replicas if role(r) == 0.0)
        wait_for(lambda: active.get("/ready")[0] == 200, what="the active one ready")
        status, body = standby.get("/ready")
        assert (status, body["reasons"]) == (503, ["standby"])
        assert standby.get("/health")[0] == 200  # alive, standing by
    finally:
        for replica in replicas:
            replica.close()


def test_the_query_string_is_ignored_and_a_silent_client_is_dropped(sqlite_store: Store) -> None:
    seed(sqlite_store.app, 1)
    daemon = Daemon(sqlite_store.env)
    try:
        daemon.wait_serving()
        assert daemon.get("/health?x=1")[0] == 200
        assert daemon.get("/ready?verbose")[0] == 200
        silent = socket.create_connection(("127.0.0.1", daemon.port), timeout=DEFAULT_TIMEOUT + 5)
        try:
            began = time.monotonic()
            assert daemon.get("/health")[0] == 200  # others are answered meanwhile
            assert silent.recv(1) == b""  # closed by the server once its timeout ran out
            assert time.monotonic() - began < DEFAULT_TIMEOUT + 2
        finally:
            silent.close()
    finally:
        daemon.close()


def test_the_probes_bind_loopback_unless_told_otherwise() -> None:
    assert ProjectorSettings.model_fields["http_host"].default == "127.0.0.1"
