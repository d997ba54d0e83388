"""``/health``, ``/ready`` and ``/metrics`` over HTTP, served from a daemon thread.

* ``/health``: the loop's heartbeat is recent (it beats every poll interval even when
  idle or standing by): the process is alive, not necessarily making progress.
* ``/ready``: the projection is serving fresh data: the heartbeat is recent, this
  replica's LISTEN connection is up when it is the active one, and the oldest committed
  event it has not applied is younger than ``ready_max_age`` (read from the database,
  so a standby reports on whichever replica is active). A red answer lists its
  ``reasons``.
* ``/metrics``: Prometheus text, refreshed with head, lag and parked events (read from
  the database) on each scrape.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from a4c_projector.db import Database
from a4c_projector.lag import Lag, measure
from a4c_projector.runner import Runner

log = logging.getLogger(__name__)


class Probes:
    """The checks behind the endpoints; one database connection, kept and reopened."""

    def __init__(self, runner: Runner, ready_max_age: float, heartbeat_max_age: float) -> None:
        self.runner = runner
        self.ready_max_age = ready_max_age
        self.heartbeat_max_age = heartbeat_max_age
        self._db: Database | None = None
        self._db_lock = threading.Lock()  # the HTTP server answers on several threads

    def close(self) -> None:
        with self._db_lock:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):  # it may be broken already
                self._db.close()
            self._db = None

    def health(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.runner.state.heartbeat
        return age <= self.heartbeat_max_age, {"heartbeat_age": round(age, 3)}

    def lag(self) -> Lag:
        store = self.runner.store
        with self._db_lock:
            if self._db is None:
                self._db = store.location.connect(purpose="probes")
            try:
                with self._db.transaction():
                    return measure(self._db, store.mapper, self.runner.options.projection)
            except Exception:
                self._drop_connection()  # the next probe opens a new one
                raise

    def ready(self) -> tuple[bool, dict[str, Any]]:
        alive, body = self.health()
        state = self.runner.state
        body.update(active=state.active, listening=state.listening)
        reasons: list[str] = []
        if not alive:
            reasons.append(f"heartbeat older than {self.heartbeat_max_age}s: the loop is stuck")
        if state.active and self.runner.store.channel is not None and not state.listening:
            reasons.append("the LISTEN connection is down")
        try:
            lag = self.lag()
        except Exception as exc:
            reasons.append(f"cannot measure the lag: {type(exc).__name__}: {exc}")
        else:
            body.update(lag.as_dict())
            if lag.events and lag.seconds > self.ready_max_age:
                reasons.append(
                    f"the oldest unapplied event is {lag.seconds:.1f}s old "
                    f"(> {self.ready_max_age}s)"
                )
        body["reasons"] = reasons
        return not reasons, body

    def metrics(self) -> bytes:
        metrics = self.runner.metrics
        try:
            lag = self.lag()
            metrics.head.set(lag.head)
            metrics.lag_events.set(lag.events)
            metrics.lag_seconds.set(lag.seconds)
            metrics.parked.set(lag.parked)
        except Exception:
            metrics.errors.labels(kind="metrics").inc()
        return generate_latest(metrics.registry)


def serve(probes: Probes, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, probes.metrics(), CONTENT_TYPE_LATEST)
                return
            check = {"/health": probes.health, "/ready": probes.ready}.get(self.path)
            if check is None:
                self._send(404, b'{"error": "not found"}', "application/json")
                return
            ok, body = check()
            body["status"] = "ok" if ok else "unavailable"
            self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="projector-http", daemon=True).start()
    return server
