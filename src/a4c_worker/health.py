"""``/health``, ``/ready`` and ``/metrics`` over plain HTTP, for Kubernetes probes and Prometheus.

The server is the standard library's ``ThreadingHTTPServer`` on its own thread, so it
answers even while the worker's event loop is busy — which is exactly what ``/health``
must detect: the loop stamps a heartbeat every second, and a heartbeat older than
``stale_after`` seconds means the loop is blocked (liveness fails, the pod restarts).

``/ready`` is true only while the worker polls its task queue and the Temporal frontend
answers its health check; it turns false the moment shutdown begins, so traffic (and
new work) stops before the grace period runs out. Its status is ``ok`` or
``not_ready: <code>`` (``starting``, ``worker_not_running``, ``temporal_unhealthy``,
``probe_failed``, ``shutting_down``), never an exception's text.

The server is ``a4c_service.probes`` (bounded threads, socket timeouts, query ignored).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from a4c_service.probes import ProbeServer, json_response, not_ready, start_probe_server

logger = logging.getLogger(__name__)
# The settings that place the endpoints, named when they cannot be served.
VARIABLES = ("HEALTH_HOST", "HEALTH_PORT")

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
        self._reason = "starting"  # a reason code: why not ready

    def beat(self) -> None:
        with self._lock:
            self._last_beat = self._clock()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        """``reason``: a code saying why not ready (ignored when ready)."""
        with self._lock:
            if self._shutting_down:
                return
            self._ready = ready
            self._reason = "" if ready else (reason or "unknown")

    def begin_shutdown(self) -> None:
        """Readiness is false from now on, whatever the probes say."""
        with self._lock:
            self._shutting_down = True
            self._ready = False
            self._reason = "shutting_down"

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
            status = not_ready([] if self._ready else [self._reason])
            return self._ready, {"status": status, "shutting_down": self._shutting_down}


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
    """Re-evaluate readiness with ``probe`` (ready?, reason code) every ``interval`` s."""
    while True:
        try:
            ready, reason = await probe()
        except Exception as exc:  # a probe that fails means "not ready", never a crash
            logger.warning("readiness probe failed: %s", type(exc).__name__)
            ready, reason = False, "probe_failed"
        state.set_ready(ready, reason)
        await asyncio.sleep(interval)


class HealthServer:
    """Serves the three endpoints for ``state`` and ``registry`` until :meth:`stop`.

    ``limits``: ``timeout`` and ``max_connections`` of :mod:`a4c_service.probes`.
    """

    def __init__(self, state: HealthState, registry: CollectorRegistry, **limits: Any) -> None:
        self.state = state
        self.registry = registry
        self._limits = limits
        self._server: ProbeServer | None = None

    def start(self, host: str, port: int) -> int:
        """Bind and serve in a daemon thread; returns the bound port (``port=0``: any free)."""
        routes = {
            "/health": lambda: json_response(*self.state.liveness()),
            "/ready": lambda: json_response(*self.state.readiness()),
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(self.registry)),
        }
        self._server = start_probe_server(
            routes, host, port, name="a4c-health", variables=VARIABLES, **self._limits
        )
        logger.info("health endpoints on %s:%d", host, self._server.port)
        return self._server.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
