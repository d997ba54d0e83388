"""``/health``, ``/ready`` and ``/metrics`` over plain HTTP, for Kubernetes probes and Prometheus.

The server is the standard library's ``ThreadingHTTPServer`` on its own thread, so it
answers even while the worker's event loop is busy — which is exactly what ``/health``
must detect: the loop stamps a heartbeat every second, and a heartbeat older than
``stale_after`` seconds means the loop is blocked (liveness fails, the pod restarts).

``/ready`` is true only while the worker polls its task queue and the Temporal frontend
answers its health check; it turns false the moment shutdown begins, so traffic (and
new work) stops before the grace period runs out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class HealthState:
    """Thread-safe flags the HTTP thread reads and the worker's loop writes."""

    def __init__(self, *, stale_after: float = 10.0, clock: Clock = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._stale_after = stale_after
        self._last_beat: float | None = None
        self._ready = False
        self._shutting_down = False
        self._reason = "starting"

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        with self._lock:
            if self._shutting_down:
                return
            self._ready = ready
            self._reason = reason or ("polling" if ready else "not ready")

    def begin_shutdown(self) -> None:
        """Readiness is false from now on, whatever the probes say."""
        with self._lock:
            self._shutting_down = True
            self._ready = False
            self._reason = "shutting down"

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            if self._last_beat is None:
                return False, {"status": "no heartbeat yet"}
            age = self._clock() - self._last_beat
            alive = age <= self._stale_after
            return alive, {
                "status": "ok" if alive else "event loop stalled",
                "heartbeat_age_seconds": round(age, 3),
            }

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            return self._ready, {"status": self._reason, "shutting_down": self._shutting_down}


async def heartbeat(state: HealthState, interval: float = 1.0) -> None:
    """Stamp the heartbeat from the event loop until cancelled."""
    while True:
        state.beat()
        await asyncio.sleep(interval)


async def watch_readiness(
    state: HealthState,
    probe: Callable[[], Awaitable[tuple[bool, str]]],
    interval: float = 2.0,
) -> None:
    """Re-evaluate readiness with ``probe`` (ready?, why) every ``interval`` seconds."""
    while True:
        try:
            ready, reason = await probe()
        except Exception as exc:  # a probe that fails means "not ready", never a crash
            ready, reason = False, f"probe failed: {type(exc).__name__}"
        state.set_ready(ready, reason)
        await asyncio.sleep(interval)


class HealthServer:
    """Serves the three endpoints for ``state`` and ``registry`` until :meth:`stop`."""

    def __init__(self, state: HealthState, registry: CollectorRegistry) -> None:
        self.state = state
        self.registry = registry
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> int:
        """Bind and serve in a daemon thread; returns the bound port (``port=0``: any free)."""
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="a4c-health", daemon=True
        )
        self._thread.start()
        bound: int = self._server.server_address[1]
        logger.info("health endpoints on %s:%d", host, bound)
        return bound

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self._json(*server.state.liveness())
            elif path == "/ready":
                self._json(*server.state.readiness())
            elif path == "/metrics":
                self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(server.registry))
            else:
                self._json(False, {"status": "not found"}, HTTPStatus.NOT_FOUND)

        def _json(
            self,
            ok: bool,
            body: dict[str, Any],
            failure: HTTPStatus = HTTPStatus.SERVICE_UNAVAILABLE,
        ) -> None:
            status = HTTPStatus.OK if ok else failure
            self._send(status, "application/json", json.dumps(body).encode())

        def _send(self, status: HTTPStatus, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes hit every few seconds: keep them out of the logs."""

    return Handler
