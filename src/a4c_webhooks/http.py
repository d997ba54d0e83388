"""``/health``, ``/ready`` and ``/metrics`` over HTTP, served from a daemon thread.

* ``/health``: the loop's heartbeat is recent (it beats every poll interval, idle or
  standing by): the process is alive.
* ``/ready``: this replica is the active one and keeps up: it holds the delivery lock,
  its heartbeat is recent, the database answers, and the fan-out is no more than
  ``WEBHOOK_READY_MAX_LAG`` public events behind. A red answer's status is
  ``not_ready: <code>`` and ``reasons`` lists every code (``standby``,
  ``heartbeat_stale``, ``database_unreachable``, ``lag_too_high``); exception texts go
  to the log only.
* ``/metrics``: Prometheus text, the database gauges refreshed on each scrape.

The server is ``a4c_service.probes`` (bounded threads, socket timeouts), as the projector's.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import generate_latest

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_service.probes import (
    KeptConnection,
    ProbeServer,
    Verdict,
    heartbeat_health,
    serve_checks,
)
from a4c_webhooks import store
from a4c_webhooks.daemon import Daemon

log = logging.getLogger(__name__)
VARIABLES = ("WEBHOOK_HTTP_HOST", "WEBHOOK_HTTP_PORT")


class Probes:
    """The checks behind the endpoints; one database connection, kept and reopened."""

    def __init__(self, daemon: Daemon, heartbeat_max_age: float, ready_max_lag: int) -> None:
        self.daemon = daemon
        self.heartbeat_max_age = heartbeat_max_age
        self.ready_max_lag = ready_max_lag
        self._db: KeptConnection[Database] = KeptConnection(
            lambda: connect(daemon.location, purpose="webhooks-probes")
        )

    def close(self) -> None:
        self._db.close()

    def gauges(self) -> store.Gauges:
        return self._db.read(store.gauges)

    def health(self) -> Verdict:
        return heartbeat_health(self.daemon.state.heartbeat, self.heartbeat_max_age)

    def ready(self) -> Verdict:
        alive, body = self.health()
        body["active"] = self.daemon.state.active
        reasons: list[str] = []
        if not self.daemon.state.active:
            reasons.append("standby")
        if not alive:
            reasons.append("heartbeat_stale")
        try:
            gauges = self.gauges()
        except Exception as exc:
            log.warning("/ready cannot read the delivery state: %s", type(exc).__name__)
            reasons.append("database_unreachable")
        else:
            body.update(
                fanout_lag=gauges.fanout_lag,
                pending=gauges.pending,
                parked_streams=gauges.parked_streams,
            )
            if gauges.fanout_lag > self.ready_max_lag:
                reasons.append("lag_too_high")
        body["reasons"] = reasons
        return not reasons, body

    def metrics(self) -> bytes:
        metrics = self.daemon.metrics
        try:
            metrics.update(self.gauges())
        except Exception:
            metrics.errors.labels(kind="metrics").inc()
        return generate_latest(metrics.registry)


def serve(probes: Probes, host: str, port: int, **limits: Any) -> ProbeServer:
    """Serve ``probes`` on a daemon thread; ``limits``: ``timeout``, ``max_connections``."""
    return serve_checks(probes, host, port, name="webhooks-http", variables=VARIABLES, **limits)


__all__ = ["VARIABLES", "Probes", "serve"]
