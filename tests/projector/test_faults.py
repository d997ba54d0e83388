"""Fault tests against real PostgreSQL, with ``a4c-projector run`` as a real process.

* SIGKILL while a batch transaction is open (held open by a lock the test owns, so the
  kill is provably mid-batch), restart: nothing lost, nothing applied twice.
* ``pg_terminate_backend`` on every connection of the daemon, repeatedly, mid-catch-up:
  it reconnects by itself and finishes.
* Two replicas: exactly one holds the projection; SIGKILL it and the other takes over.

"Complete" is always the same three facts (``assert_complete``): the position is the
head, the live tables equal a from-scratch rebuild, and the audit finds every committed
event applied exactly once.
"""

from __future__ import annotations

import threading
import time

import psycopg

from a4c_projector.engine.runner import Runner, RunnerOptions
from tests.projector.conftest import (
    Daemon,
    Store,
    assert_complete,
    bulk_organizations,
    make_pg_store,
    seed,
    store_head,
    tracked_position,
)
from tests.servers.postgres import fresh_schema
from tests.support import wait_for


def backends(store: Store, purpose: str = "") -> list[tuple[int, str, str | None]]:
    """(pid, application_name, wait_event_type) of this store's projector connections."""
    with psycopg.connect(store.location.conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, application_name, wait_event_type FROM pg_stat_activity "
            "WHERE application_name LIKE %s AND application_name LIKE %s",
            (f"a4c-projector:{purpose}%", f"%:{store.location.schema}"),
        ).fetchall()
    return [(int(r[0]), str(r[1]), r[2]) for r in rows]


def test_sigkill_mid_batch_then_restart_loses_and_duplicates_nothing(pg_store: Store) -> None:
    bulk_organizations(pg_store, 500)  # 2,000 events
    first = Daemon(pg_store.env, PROJECTOR_BATCH_SIZE="50")
    try:
        wait_for(lambda: tracked_position(pg_store) > 0, what="a first batch")
        with psycopg.connect(pg_store.location.conninfo) as blocker:
            # Blocks the batch at its applied-log insert: the read-model rows of the
            # batch are written, the position is not, the transaction is open.
            blocker.execute(
                f'LOCK TABLE "{pg_store.location.schema}".applied_ranges IN EXCLUSIVE MODE'
            )
            wait_for(
                lambda: any(w == "Lock" for _, _, w in backends(pg_store, "batch")),
                what="the daemon's batch to wait on the test's lock",
            )
            stuck_at = tracked_position(pg_store)
            first.kill()
            blocker.rollback()
        assert 0 < stuck_at < store_head(pg_store)
    finally:
        first.close()
    # The killed batch committed nothing: the position is where it was.
    wait_for(lambda: not backends(pg_store), what="the killed daemon's sessions to end")
    assert tracked_position(pg_store) == stuck_at

    second = Daemon(pg_store.env, PROJECTOR_BATCH_SIZE="50")
    try:
        wait_for(lambda: tracked_position(pg_store) == store_head(pg_store), what="catch-up")
        code, err = second.terminate()
        assert code == 0, err
    finally:
        second.close()
    assert_complete(pg_store)


def test_terminated_connections_are_reopened_and_the_run_finishes(pg_store: Store) -> None:
    bulk_organizations(pg_store, 500)
    daemon = Daemon(pg_store.env, PROJECTOR_BATCH_SIZE="25")
    try:
        wait_for(lambda: tracked_position(pg_store) > 0, what="a first batch")
        killed = 0
        for _ in range(3):  # three times, each while events remain to apply
            assert tracked_position(pg_store) < store_head(pg_store)
            pids = [pid for pid, _, _ in backends(pg_store)]
            assert pids, "the daemon has no connections to terminate"
            with psycopg.connect(pg_store.location.conninfo, autocommit=True) as admin:
                for pid in pids:
                    terminated = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
                    assert terminated is not None
                    killed += bool(terminated[0])

            def progressed(since: int = tracked_position(pg_store)) -> bool:
                return tracked_position(pg_store) > since

            wait_for(progressed, what="progress again")
        assert killed >= 3
        wait_for(lambda: tracked_position(pg_store) == store_head(pg_store), what="catch-up")
        errors = daemon.metrics()
        assert errors.get("a4c_projector_errors_total{kind=connection}", 0) >= 1
        # Still live after all that: a new command reaches the read model.
        view = seed(pg_store.app, 1, prefix="after")[-1]
        wait_for(lambda: tracked_position(pg_store) >= view.position, what="a live event")
        code, err = daemon.terminate()
        assert code == 0, err
    finally:
        daemon.close()
    assert_complete(pg_store)


def test_one_replica_holds_the_projection_and_another_takes_over(pg_store: Store) -> None:
    seed(pg_store.app, 3)
    replicas = [Daemon(pg_store.env), Daemon(pg_store.env)]
    try:
        for replica in replicas:
            replica.wait_serving()

        def active() -> list[Daemon]:
            return [r for r in replicas if r.metrics().get("a4c_projector_active") == 1.0]

        wait_for(lambda: len(active()) == 1, what="one active replica")
        time.sleep(1.5)  # the standby has retried the lock at least once meanwhile
        (holder,) = active()
        standby = replicas[1 - replicas.index(holder)]
        assert standby.metrics()["a4c_projector_active"] == 0.0
        with psycopg.connect(pg_store.location.conninfo, autocommit=True) as conn:
            held = conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
                (f"a4c-projector:lock:{pg_store.location.schema}",),
            ).fetchone()
        assert held == (1,)
        wait_for(lambda: tracked_position(pg_store) == store_head(pg_store), what="catch-up")

        holder.kill()
        killed_at = time.monotonic()
        wait_for(lambda: standby.metrics().get("a4c_projector_active") == 1.0, timeout=15)
        takeover = time.monotonic() - killed_at
        seed(pg_store.app, 3, prefix="after")
        wait_for(lambda: tracked_position(pg_store) == store_head(pg_store), what="catch-up")
        assert standby.get("/ready")[0] == 200
        code, err = standby.terminate()
        assert code == 0, err
        print(f"takeover after SIGKILL: {takeover:.2f}s")
    finally:
        for replica in replicas:
            replica.close()
    assert_complete(pg_store)


def test_projections_in_two_schemas_do_not_share_a_lock(pg_store: Store, pg_server: str) -> None:
    """Advisory locks are per database: the key must name the schema, or one
    deployment's replica would stand by for another's."""
    with fresh_schema(pg_server) as other_schema:
        other = make_pg_store(other_schema)
        runners = [Runner(s.store, RunnerOptions(poll_interval=0.05)) for s in (pg_store, other)]
        threads = [threading.Thread(target=r.run) for r in runners]
        try:
            for thread in threads:
                thread.start()
            wait_for(lambda: all(r.state.active for r in runners), what="both projections active")
        finally:
            for runner in runners:
                runner.stop()
            for thread in threads:
                thread.join(10)
            other.app.close()
