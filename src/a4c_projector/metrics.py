"""Prometheus metrics of one projector process (own registry: tests run several).

Names follow Prometheus conventions: base units in the name (``_seconds``, ``_events``),
counters end in ``_total`` (the client appends it), a point in time is a Unix
``_timestamp_seconds`` (an alert compares it with ``time()``, so a stalled loop shows
even while the HTTP thread still answers scrapes). The process's own CPU, memory and
file descriptors, and Python's runtime, are on the same registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from a4c_service.metrics import register_process_collectors

BATCH_SIZE_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 2000, 5000, 10000)


class ProjectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        register_process_collectors(r)
        self.position = Gauge("a4c_projector_position", "Tracked position", registry=r)
        self.head = Gauge("a4c_projector_head", "Highest notification id in the store", registry=r)
        self.lag_events = Gauge(
            "a4c_projector_lag_events", "Committed events not applied", registry=r
        )
        self.lag_seconds = Gauge(
            "a4c_projector_lag_seconds", "Age of the oldest unapplied event", registry=r
        )
        self.batch_events = Histogram(
            "a4c_projector_batch_events",
            "Events per batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "a4c_projector_batch_duration_seconds", "Batch transaction duration", registry=r
        )
        self.errors = Counter("a4c_projector_errors", "Errors in the loop", ["kind"], registry=r)
        self.parked = Gauge(
            "a4c_projector_parked_events", "Events in the dead-letter table", registry=r
        )
        self.heartbeat = Gauge(
            "a4c_projector_heartbeat_timestamp_seconds",
            "Unix time of the loop's last beat (every poll interval, also idle or standing by)",
            registry=r,
        )
        self.active = Gauge(
            "a4c_projector_active", "1 while this replica holds the projection lock", registry=r
        )
