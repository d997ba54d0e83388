"""What every process's ``/metrics`` shows besides its own metrics: the process itself."""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    GCCollector,
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


__all__ = ["register_process_collectors"]
