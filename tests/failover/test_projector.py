"""``a4c-projector run`` (a real process) across both kinds of failover, with a writer
going on all along: afterwards its position is the head, its read models equal a
rebuild from scratch and the audit finds every event applied exactly once.

Replication is synchronous (pg_auto_failover's default with one standby): a commit is
acknowledged only once the standby has it, so the new primary holds every event and
every read-model batch the projector saw committed. (An asynchronous standby could lose
the last acknowledged transactions of both; the position and the read models commit
together, so they would go back together and the projector would replay — but the
events lost with them would be gone: this test would see them missing.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from a4c_domain import OnboardingApplication
from a4c_domain.errors import StoreUnavailable
from a4c_projector.dialects.connection import connect
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.maintenance.audit import audit
from tests.projector.conftest import Daemon, Store, seed, store_head
from tests.projector.conftest import tracked_position as position
from tests.servers.pgfailover import FailoverCluster
from tests.support import TOKEN_SECRET, wait_for


@pytest.fixture
def cluster_store(failover_cluster: FailoverCluster, failover_schema: str) -> Iterator[Store]:
    env = {
        **failover_cluster.store_env(),
        "POSTGRES_SCHEMA": failover_schema,
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
    }
    store = Store(env, OnboardingApplication(env), open_event_store(env))
    yield store
    store.app.close()


def test_the_projector_daemon_carries_on_across_failovers(
    failover_cluster: FailoverCluster, cluster_store: Store
) -> None:
    store = cluster_store
    seed(store.app, 5, prefix="before")
    daemon = Daemon(store.env)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                seed(store.app, 1, prefix=f"during-{n}")
                written.append(n)
            except StoreUnavailable:  # a switch that outlasted the command's wait
                pass

    writer = threading.Thread(target=write)
    try:
        daemon.wait_serving()
        wait_for(lambda: position(store) >= store_head(store), 30, "the first catch-up")
        writer.start()
        for fault in (failover_cluster.perform_failover, failover_cluster.kill_primary):
            failover_cluster.wait_healthy()
            fault()
            daemon.assert_alive()
        failover_cluster.wait_healthy()
        written_at_end = len(written)
        wait_for(lambda: len(written) > written_at_end + 2, 30, "writes after the switches")
        stop.set()
        writer.join(30)
        wait_for(lambda: position(store) == store_head(store), 30, "the daemon at the head")
        daemon.assert_alive()
        assert store.live_rows() == store.rebuilt_rows()
        with connect(store.location) as db:
            report = audit(db, "a4c")
            rows = db.execute(f"SELECT count(*) FROM {store.location.qualified_events_table}")
        events = int(rows[0][0])
        assert report.complete, report.missing
        # Every event, applied once. Not the head: a promoted standby's sequence starts
        # past the values the old primary had logged ahead, so ids jump at a switch.
        assert report.applied + report.parked == report.checked == events
        assert daemon.get("/ready")[0] == 200
    finally:
        stop.set()
        daemon.close()
