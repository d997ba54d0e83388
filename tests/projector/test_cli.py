"""The CLI end to end, as subprocesses against real PostgreSQL."""

from __future__ import annotations

import json
import signal

from tests.projector.conftest import (
    Daemon,
    Store,
    free_port,
    http_get,
    projector_cli,
    run_cli,
    seed,
    tracked_position,
    wait_for,
)


def test_run_status_audit_rebuild_and_probes(pg_store: Store) -> None:
    views = seed(pg_store.app, 5)
    port = free_port()
    daemon = projector_cli(
        pg_store.env, "run", PROJECTOR_HTTP_PORT=str(port), PROJECTOR_POLL_INTERVAL="0.1"
    )
    try:
        wait_for(lambda: http_get(port, "/ready")[0] == 200, what="/ready")
        wait_for(lambda: tracked_position(pg_store) == views[-1].position, what="catch-up")
        status, body = http_get(port, "/health")
        assert status == 200 and json.loads(body)["status"] == "ok"
        ready = json.loads(http_get(port, "/ready")[1])
        assert ready["position"] == views[-1].position and ready["lag_events"] == 0
        metrics = http_get(port, "/metrics")[1]
        assert f"a4c_projector_position {float(views[-1].position)}" in metrics
        assert "a4c_projector_batch_duration_seconds_count" in metrics
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
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
        wait_for(lambda: tracked_position(sqlite_store) == 4, what="catch-up")
        for daemon in daemons:
            daemon.proc.send_signal(signal.SIGTERM)
        assert [d.proc.wait(timeout=15) for d in daemons] == [0, 0, 0, 0]
    finally:
        for daemon in daemons:
            daemon.close()
