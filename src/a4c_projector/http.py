"""``/health``, ``/ready`` and ``/metrics`` over HTTP, served from a daemon thread.

* ``/health``: the loop's heartbeat is recent (it beats every poll interval even when
  idle or standing by): the process is alive, not necessarily making progress.
* ``/ready``: this replica is the active one and serves fresh data: it holds the
  projection's lock, its heartbeat is recent, its LISTEN connection is up, and the
  oldest committed event it has not applied is younger than ``ready_max_age``. A red
  answer's status is ``not_ready: <code>`` and ``reasons`` lists every code
  (``standby``, ``heartbeat_stale``, ``listen_down``, ``database_unreachable``,
  ``lag_too_high``); exception texts go to the log only.
* ``/metrics``: Prometheus text, refreshed with head, lag and parked events (read from
  the database) on each scrape.

The server is ``a4c_service.probes`` (bounded threads, socket timeouts, query ignored).
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import generate_latest

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.runner import Runner
from a4c_projector.maintenance.lag import Lag, measure
from a4c_service.probes import (
    KeptConnection,
    ProbeServer,
    Verdict,
    heartbeat_health,
    serve_checks,
)

log = logging.getLogger(__name__)
# The settings that place the probes, named when they cannot be served.
VARIABLES = ("PROJECTOR_HTTP_HOST", "PROJECTOR_HTTP_PORT")


class Probes:
    """The checks behind the endpoints; one database connection, kept and reopened."""

    def __init__(self, runner: Runner, ready_max_age: float, heartbeat_max_age: float) -> None:
        self.runner = runner
        self.ready_max_age = ready_max_age
        self.heartbeat_max_age = heartbeat_max_age
        self._db: KeptConnection[Database] = KeptConnection(
            lambda: connect(runner.store.location, purpose="probes")
        )

    def close(self) -> None:
        self._db.close()

    def health(self) -> Verdict:
        return heartbeat_health(self.runner.state.heartbeat, self.heartbeat_max_age)

    def lag(self) -> Lag:
        return self._db.read(self._measure)

    def _measure(self, db: Database) -> Lag:
        with db.transaction():
            return measure(db, self.runner.store.mapper, self.runner.options.projection)

    def ready(self) -> Verdict:
        alive, body = self.health()
        state = self.runner.state
        body.update(active=state.active, listening=state.listening)
        reasons: list[str] = []
        if not state.active:
            reasons.append("standby")  # another replica holds the lock and serves
        if not alive:
            reasons.append("heartbeat_stale")  # the loop is stuck
        if state.active and self.runner.store.channel is not None and not state.listening:
            reasons.append("listen_down")
        try:
            lag = self.lag()
        except Exception as exc:
            log.warning("/ready cannot measure the lag: %s", type(exc).__name__)
            reasons.append("database_unreachable")
        else:
            body.update(lag.as_dict())
            if lag.events and lag.seconds > self.ready_max_age:
                reasons.append("lag_too_high")
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


def serve(probes: Probes, host: str, port: int, **limits: Any) -> ProbeServer:
    """Serve ``probes`` on a daemon thread; ``limits``: ``timeout``, ``max_connections``."""
    return serve_checks(probes, host, port, name="projector-http", variables=VARIABLES, **limits)
