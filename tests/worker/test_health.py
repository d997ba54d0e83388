"""The health server over a real socket: liveness follows the heartbeat, readiness the probe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support import wait_for

from a4c_service.probes import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT
from a4c_worker.config import WorkerSettings
from a4c_worker.health import HealthServer, HealthState, heartbeat, watch_readiness
from a4c_worker.metrics import WorkerMetrics


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(port: int, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET ``path``; error statuses are answers too."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> HealthState:
    return HealthState(stale_after=5.0, clock=clock)


@pytest.fixture
def metrics() -> WorkerMetrics:
    return WorkerMetrics()


@pytest.fixture
def port(state: HealthState, metrics: WorkerMetrics) -> Iterator[int]:
    server = HealthServer(state, metrics.registry)
    bound = server.start("127.0.0.1", 0)
    try:
        yield bound
    finally:
        server.stop()


def body(text: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_health_fails_until_the_first_heartbeat_then_when_it_goes_stale(
    port: int, state: HealthState, clock: ManualClock
) -> None:
    assert get(port, "/health")[0] == 503
    state.beat()
    status, content_type, text = get(port, "/health")
    assert (status, content_type) == (200, "application/json")
    assert body(text)["status"] == "ok"
    clock.now += 6.0  # the loop stopped stamping: blocked
    status, _, text = get(port, "/health")
    assert status == 503
    assert body(text)["status"] == "event loop stalled"


def test_ready_follows_set_ready_and_stays_false_after_shutdown_begins(
    port: int, state: HealthState
) -> None:
    assert get(port, "/ready")[0] == 503
    state.set_ready(False, "temporal_unhealthy")
    assert body(get(port, "/ready")[2])["status"] == "not_ready: temporal_unhealthy"
    state.set_ready(True)
    assert get(port, "/ready")[0] == 200
    assert body(get(port, "/ready")[2])["status"] == "ok"
    state.begin_shutdown()
    state.set_ready(True, "a late probe result")  # must not win over shutdown
    status, _, text = get(port, "/ready")
    assert status == 503
    assert body(text) == {"status": "not_ready: shutting_down", "shutting_down": True}


def test_metrics_are_prometheus_text_and_unknown_paths_are_404(
    port: int, metrics: WorkerMetrics
) -> None:
    metrics.activities_started.labels("register_organization").inc()
    metrics.activities_failed.labels("verify_dns", "DNSNotVisible").inc(2)
    status, content_type, text = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert 'a4c_worker_activities_started_total{activity_type="register_organization"} 1.0' in text
    assert (
        'a4c_worker_activities_failed_total{activity_type="verify_dns",error_type="DNSNotVisible"}'
        " 2.0" in text
    )
    assert get(port, "/nope")[0] == 404
    assert get(port, "/metrics?name[]=x")[0] == 200  # the query string is ignored


async def test_heartbeat_task_keeps_health_green_while_the_loop_runs() -> None:
    state = HealthState(stale_after=5.0)
    task = asyncio.create_task(heartbeat(state, interval=0.01))
    try:
        await asyncio.sleep(0.05)
        assert state.liveness()[0] is True
    finally:
        task.cancel()


async def test_readiness_watcher_treats_a_failing_probe_as_not_ready() -> None:
    state = HealthState()
    observed: list[tuple[bool, str]] = []  # readiness as each probe call begins
    done = asyncio.Event()

    async def probe() -> tuple[bool, str]:
        ready, detail = state.readiness()
        observed.append((ready, detail["status"]))
        if len(observed) == 2:
            raise RuntimeError("frontend unreachable at 10.0.0.7")
        if len(observed) == 3:
            done.set()
        return True, ""

    task = asyncio.create_task(watch_readiness(state, probe, interval=0.001))
    try:
        await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        task.cancel()
    # Reason codes, never the exception's text.
    assert observed == [
        (False, "not_ready: starting"),
        (True, "ok"),
        (False, "not_ready: probe_failed"),
    ]


def idle_client(port: int) -> socket.socket:
    """A client that connects and never sends a byte."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEFAULT_TIMEOUT + 5)
    return sock


def test_a_silent_client_does_not_block_health_and_is_dropped_after_the_timeout(
    port: int, state: HealthState
) -> None:
    state.beat()
    silent = idle_client(port)
    try:
        began = time.monotonic()
        assert get(port, "/health")[0] == 200  # others are answered meanwhile
        assert time.monotonic() - began < 1
        assert silent.recv(1) == b""  # the server closed it ...
        assert time.monotonic() - began < DEFAULT_TIMEOUT + 2  # ... once the timeout ran out
    finally:
        silent.close()


def test_idle_connections_cannot_grow_the_threads_without_bound(
    port: int, state: HealthState
) -> None:
    state.beat()
    before = threading.active_count()
    clients = [idle_client(port) for _ in range(DEFAULT_MAX_CONNECTIONS + 20)]
    try:
        time.sleep(0.5)
        assert threading.active_count() - before <= DEFAULT_MAX_CONNECTIONS
        # The ones beyond the bound were answered "busy" at once and closed.
        beyond = clients[DEFAULT_MAX_CONNECTIONS + 1]
        beyond.settimeout(5)
        assert beyond.recv(100).startswith(b"HTTP/1.1 503")
    finally:
        for client in clients:
            client.close()
    # Once the idle ones are gone, /health answers again.
    wait_for(lambda: get(port, "/health")[0] == 200, DEFAULT_TIMEOUT + 2, "/health to answer again")


def test_the_probes_bind_loopback_unless_told_otherwise() -> None:
    assert WorkerSettings.model_fields["health_host"].default == "127.0.0.1"


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end has closed ``sock`` (without waiting)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(100, socket.MSG_PEEK) == b""
    except OSError:
        return True


def test_a_client_trickling_its_request_is_dropped_when_the_whole_request_times_out(
    state: HealthState, metrics: WorkerMetrics
) -> None:
    server = HealthServer(state, metrics.registry, timeout=1.0)
    port = server.start("127.0.0.1", 0)
    trickler = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        trickler.sendall(b"GET /health HTTP/1.0\r\nX-Pad: ")
        began = time.monotonic()
        # One byte every 0.2 s: every read is quick, the request never ends.
        while not closed_by_peer(trickler) and time.monotonic() - began < 4:
            with contextlib.suppress(OSError):
                trickler.sendall(b"a")
            time.sleep(0.2)
        assert closed_by_peer(trickler)
        assert time.monotonic() - began < 2.5  # the 1 s deadline of the whole request
    finally:
        trickler.close()
        server.stop()
