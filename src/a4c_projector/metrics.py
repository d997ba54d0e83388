"""Prometheus metrics of one projector process (own registry: tests run several).

Names follow Prometheus conventions: base units in the name (``_seconds``, ``_events``),
counters end in ``_total`` (the client appends it), a point in time is a Unix
``_timestamp_seconds`` (an alert compares it with ``time()``, so a stalled loop shows
even while the HTTP thread still answers scrapes). The process's own CPU, memory and
file descriptors, and Python's runtime, are on the same registry.
"""

from __future__ import annotations

from a4c_service.metrics import ProcessMetrics

BATCH_SIZE_BUCKETS = (1, 5, 10, 50, 100, 500, 1000, 2000, 5000, 10000)


class ProjectorMetrics(ProcessMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.position = self.gauge("a4c_projector_position", "Tracked position")
        self.head = self.gauge("a4c_projector_head", "Highest notification id in the store")
        self.lag_events = self.gauge("a4c_projector_lag_events", "Committed events not applied")
        self.lag_seconds = self.gauge(
            "a4c_projector_lag_seconds", "Age of the oldest unapplied event"
        )
        self.batch_events = self.histogram(
            "a4c_projector_batch_events", "Events per batch", buckets=BATCH_SIZE_BUCKETS
        )
        self.batch_duration = self.histogram(
            "a4c_projector_batch_duration_seconds", "Batch transaction duration"
        )
        self.errors = self.counter("a4c_projector_errors", "Errors in the loop", ["kind"])
        self.parked = self.gauge("a4c_projector_parked_events", "Events in the dead-letter table")
        self.heartbeat = self.gauge(
            "a4c_projector_heartbeat_timestamp_seconds",
            "Unix time of the loop's last beat (every poll interval, also idle or standing by)",
        )
        self.active = self.gauge(
            "a4c_projector_active", "1 while this replica holds the projection lock"
        )
