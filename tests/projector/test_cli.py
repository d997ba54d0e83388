"""The CLI end to end, as subprocesses against real PostgreSQL."""

from __future__ import annotations

import json
import signal
import socket

from tests.projector.conftest import (
    Daemon,
    Store,
    http_get,
    run_cli,
    seed,
    tracked_position,
)
from tests.support import wait_for


def test_run_status_audit_rebuild_and_probes(pg_store: Store) -> None:
    views = seed(pg_store.app, 5)
    daemon = Daemon(pg_store.env)
    try:
        wait_for(lambda: daemon.get("/ready")[0] == 200, what="/ready")
        wait_for(lambda: tracked_position(pg_store) == views[-1].position, what="catch-up")
        status, body = daemon.get("/health")
        assert status == 200 and body["status"] == "ok"
        ready = daemon.get("/ready")[1]
        assert ready["position"] == views[-1].position and ready["lag_events"] == 0
        metrics = http_get(daemon.port, "/metrics")[1]
        assert f"a4c_projector_position {float(views[-1].position)}" in metrics
        assert "a4c_projector_batch_duration_seconds_count" in metrics
        code, err = daemon.terminate(timeout=15)
        assert code == 0, err
    finally:
        daemon.close()
    code, out, _ = run_cli(pg_store.env, "status")
    assert code == 0 and json.loads(out)["lag_events"] == 0
    code, out, _ = run_cli(pg_store.env, "audit")
    assert code == 0 and json.loads(out)["complete"] is True
    before = pg_store.live_rows()
    code, out, err = run_cli(pg_store.env, "rebuild", "--no-progress")
    assert code == 0, err
    assert json.loads(out)["swapped"] is True
    assert pg_store.live_rows() == before


def test_bad_configuration_names_the_variable(pg_store: Store) -> None:
    code, _, err = run_cli(pg_store.env, "status", PROJECTOR_BATCH_SIZE="lots")
    assert code == 2 and "PROJECTOR_BATCH_SIZE" in err


def test_sigterm_stops_idle_sqlite_daemons(sqlite_store: Store) -> None:
    """SIGTERM lands while the loop waits between polls: every daemon exits 0.

    (A handler setting the loop's Event on the thread that waits on it can deadlock;
    with a 1 ms poll interval most signals land in that wait.)
    """
    seed(sqlite_store.app, 1)
    daemons = [Daemon(sqlite_store.env, PROJECTOR_POLL_INTERVAL="0.001") for _ in range(4)]
    try:
        for daemon in daemons:
            daemon.wait_serving()
        wait_for(lambda: tracked_position(sqlite_store) == 5, what="catch-up")
        for daemon in daemons:
            daemon.proc.send_signal(signal.SIGTERM)
        assert [d.wait(timeout=15)[0] for d in daemons] == [0, 0, 0, 0]
    finally:
        for daemon in daemons:
            daemon.close()


def test_a_taken_probe_port_is_one_line_naming_its_variables(sqlite_store: Store) -> None:
    """Two replicas on one host with the default port: the second says which variable."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        code, _, err = run_cli(
            sqlite_store.env, "run", PROJECTOR_HTTP_HOST="127.0.0.1", PROJECTOR_HTTP_PORT=str(busy)
        )
    assert code == 2, err
    assert "Traceback" not in err, err
    assert f"127.0.0.1:{busy} (PROJECTOR_HTTP_HOST, PROJECTOR_HTTP_PORT)" in err, err
