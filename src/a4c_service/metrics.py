"""What every process's ``/metrics`` shows besides its own metrics (the process itself),
and the base of each process's metrics: a registry of its own (tests run several
processes in one), its metrics declared on it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)


def register_process_collectors(registry: CollectorRegistry) -> None:
    """CPU, memory, file descriptors and start time of this process; Python's version and
    garbage collector. On a registry of our own: the default one is never served."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    if GC_COLLECTOR is not None:  # CPython only
        GCCollector(registry=registry)


class ProcessMetrics:
    """One process's metrics on ``registry`` (default: a new one), with the process
    collectors; a subclass declares its metrics with :meth:`gauge`, :meth:`counter` and
    :meth:`histogram`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        register_process_collectors(self.registry)

    def gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, registry=self.registry)

    def counter(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        preset: Iterable[str] = (),
    ) -> Counter:
        """``preset``: values of the one label whose series show (at 0) before any count,
        so a rate or an alert on them has a series from the start."""
        counter = Counter(name, documentation, labelnames, registry=self.registry)
        for value in preset:
            counter.labels(value)
        return counter

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        return Histogram(name, documentation, labelnames, buckets=buckets, registry=self.registry)


__all__ = ["ProcessMetrics", "register_process_collectors"]
