"""The base of every process's metrics (a4c_service.metrics.ProcessMetrics): a registry of
its own with the process collectors, preset label values shown at 0 before any count."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from a4c_service.metrics import ProcessMetrics


class Example(ProcessMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.errors = self.counter("a4c_example_errors", "Errors", ["kind"], preset=("a", "b"))
        self.size = self.histogram("a4c_example_size", "Sizes", buckets=(1, 10))
        self.up = self.gauge("a4c_example_up", "Up")


def test_each_instance_has_its_registry_with_the_process_and_preset_series() -> None:
    first, second = Example(), Example()  # no duplicate-timeseries error: two registries
    first.errors.labels("a").inc()
    first.size.observe(5)
    first.up.set(1)
    text = generate_latest(first.registry).decode()
    assert 'a4c_example_errors_total{kind="a"} 1.0' in text
    assert 'a4c_example_errors_total{kind="b"} 0.0' in text
    assert 'a4c_example_size_bucket{le="10.0"} 1.0' in text
    assert "a4c_example_up 1.0" in text
    assert "python_info" in text  # the process collectors, on each registry
    assert 'a4c_example_errors_total{kind="a"} 0.0' in generate_latest(second.registry).decode()


def test_a_given_registry_is_used() -> None:
    registry = CollectorRegistry()
    metrics = Example(registry)
    assert metrics.registry is registry
    assert registry.get_sample_value("a4c_example_up") == 0.0
