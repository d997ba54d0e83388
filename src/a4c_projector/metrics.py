"""Prometheus metrics of one projector process (own registry: tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BATCH_SIZE_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 2000, 5000, 10000)


class ProjectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.position = Gauge("a4c_projector_position", "Tracked position", registry=r)
        self.head = Gauge("a4c_projector_head", "Highest notification id in the store", registry=r)
        self.lag_events = Gauge(
            "a4c_projector_lag_events", "Committed events not applied", registry=r
        )
        self.lag_seconds = Gauge(
            "a4c_projector_lag_seconds", "Age of the oldest unapplied event", registry=r
        )
        self.batch_size = Histogram(
            "a4c_projector_batch_size", "Events per batch", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.batch_duration = Histogram(
            "a4c_projector_batch_duration_seconds", "Batch transaction duration", registry=r
        )
        self.errors = Counter("a4c_projector_errors", "Errors in the loop", ["kind"], registry=r)
        self.parked = Gauge(
            "a4c_projector_parked_events", "Events in the dead-letter table", registry=r
        )
        self.active = Gauge(
            "a4c_projector_active", "1 while this replica holds the projection lock", registry=r
        )
