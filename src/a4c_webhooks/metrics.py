"""Prometheus metrics of one a4c-webhooks process (own registry: tests run several).

Fixed label sets only (an outcome from :data:`a4c_webhooks.delivery.OUTCOMES`, an error
kind from :data:`ERROR_KINDS`): never an endpoint or an organization id, which would
grow a series per customer. Which streams are parked is ``a4c-webhooks streams``'s to say.
The gauges read from the database (parked, failing, disabled, fan-out lag, pending) are
refreshed on each scrape.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from a4c_service.metrics import register_process_collectors
from a4c_webhooks.delivery import OUTCOMES
from a4c_webhooks.store import Gauges

# From the event's occurred_at to its 2xx: seconds when all is well, hours after outages.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
ERROR_KINDS = ("loop", "record", "disable", "metrics")


class WebhookMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        register_process_collectors(r)
        self.deliveries = Counter(
            "a4c_webhooks_deliveries", "Delivery attempts by outcome", ["outcome"], registry=r
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome=outcome)
        self.delivery_lag = Histogram(
            "a4c_webhooks_delivery_lag_seconds",
            "From the event's occurred_at to its delivery (2xx)",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.parked_streams = Gauge(
            "a4c_webhooks_parked_streams", "Streams whose retries are exhausted", registry=r
        )
        self.failing_streams = Gauge(
            "a4c_webhooks_failing_streams", "Streams failing, not yet parked", registry=r
        )
        self.disabled_endpoints = Gauge(
            "a4c_webhooks_disabled_endpoints", "Endpoints disabled", registry=r
        )
        self.fanout_lag = Gauge(
            "a4c_webhooks_fanout_lag_events",
            "Public events the fan-out has not turned into deliveries yet",
            registry=r,
        )
        self.pending = Gauge(
            "a4c_webhooks_pending_deliveries", "Deliveries not yet delivered", registry=r
        )
        self.disables = Counter(
            "a4c_webhooks_disable_requests", "Automatic disables requested", registry=r
        )
        self.in_flight = Gauge("a4c_webhooks_in_flight", "Deliveries being sent now", registry=r)
        self.errors = Counter("a4c_webhooks_errors", "Errors by kind", ["kind"], registry=r)
        for kind in ERROR_KINDS:
            self.errors.labels(kind=kind)
        self.heartbeat = Gauge(
            "a4c_webhooks_heartbeat_timestamp_seconds",
            "Unix time of the loop's last beat (also idle or standing by)",
            registry=r,
        )
        self.active = Gauge(
            "a4c_webhooks_active", "1 while this replica holds the delivery lock", registry=r
        )

    def update(self, gauges: Gauges) -> None:
        self.parked_streams.set(gauges.parked_streams)
        self.failing_streams.set(gauges.failing_streams)
        self.disabled_endpoints.set(gauges.disabled_endpoints)
        self.fanout_lag.set(gauges.fanout_lag)
        self.pending.set(gauges.pending)


__all__ = ["ERROR_KINDS", "LAG_BUCKETS", "WebhookMetrics"]
