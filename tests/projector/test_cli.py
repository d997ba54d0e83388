"""The CLI end to end, as subprocesses against real PostgreSQL."""

from __future__ import annotations

import json
import signal

from tests.projector.conftest import (
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
