"""Prometheus metrics of one a4c-webhooks process (own registry: tests run several).

Fixed label sets only (an outcome from :data:`a4c_webhooks.delivery.OUTCOMES`, an error
kind from :data:`ERROR_KINDS`): never an endpoint or an organization id, which would
grow a series per customer. Which streams are parked is ``a4c-webhooks streams``'s to say.
The gauges read from the database (parked, failing, disabled, fan-out lag, pending) are
refreshed on each scrape.
"""

from __future__ import annotations

from a4c_service.metrics import ProcessMetrics
from a4c_webhooks.delivery import OUTCOMES
from a4c_webhooks.store import Gauges

# From the event's occurred_at to its 2xx: seconds when all is well, hours after outages.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
ERROR_KINDS = ("loop", "record", "disable", "metrics")


class WebhookMetrics(ProcessMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.deliveries = self.counter(
            "a4c_webhooks_deliveries", "Delivery attempts by outcome", ["outcome"], preset=OUTCOMES
        )
        self.delivery_lag = self.histogram(
            "a4c_webhooks_delivery_lag_seconds",
            "From the event's occurred_at to its delivery (2xx)",
            buckets=LAG_BUCKETS,
        )
        self.parked_streams = self.gauge(
            "a4c_webhooks_parked_streams", "Streams whose retries are exhausted"
        )
        self.failing_streams = self.gauge(
            "a4c_webhooks_failing_streams", "Streams failing, not yet parked"
        )
        self.disabled_endpoints = self.gauge(
            "a4c_webhooks_disabled_endpoints", "Endpoints disabled"
        )
        self.fanout_lag = self.gauge(
            "a4c_webhooks_fanout_lag_events",
            "Public events the fan-out has not turned into deliveries yet",
        )
        self.pending = self.gauge("a4c_webhooks_pending_deliveries", "Deliveries not yet delivered")
        self.disables = self.counter(
            "a4c_webhooks_disable_requests", "Automatic disables requested"
        )
        self.in_flight = self.gauge("a4c_webhooks_in_flight", "Deliveries being sent now")
        self.errors = self.counter(
            "a4c_webhooks_errors", "Errors by kind", ["kind"], preset=ERROR_KINDS
        )
        self.heartbeat = self.gauge(
            "a4c_webhooks_heartbeat_timestamp_seconds",
            "Unix time of the loop's last beat (also idle or standing by)",
        )
        self.active = self.gauge(
            "a4c_webhooks_active", "1 while this replica holds the delivery lock"
        )

    def update(self, gauges: Gauges) -> None:
        self.parked_streams.set(gauges.parked_streams)
        self.failing_streams.set(gauges.failing_streams)
        self.disabled_endpoints.set(gauges.disabled_endpoints)
        self.fanout_lag.set(gauges.fanout_lag)
        self.pending.set(gauges.pending)


__all__ = ["ERROR_KINDS", "LAG_BUCKETS", "WebhookMetrics"]
