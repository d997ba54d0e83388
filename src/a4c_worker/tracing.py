"""OpenTelemetry tracing, off by default: workflow → activity → event metadata.

``OTEL_TRACES_EXPORTER`` (the standard variable) turns it on: ``console`` prints spans,
``otlp`` exports them (install ``a4c[otlp]``; the exporter reads the standard
``OTEL_EXPORTER_OTLP_*`` variables). The worker then runs Temporal's
``TracingInterceptor``, so a bootstrap's workflow and activity spans share one trace,
and every event an activity records carries that ``trace_id`` and ``span_id`` in its
metadata (see :func:`a4c_worker.activities.current_activity_cause`).
"""

from __future__ import annotations

from typing import Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor

from a4c_domain.errors import ConfigurationError

TracesExporter = Literal["none", "console", "otlp"]
SERVICE_NAME = "a4c-worker"


def _exporter(kind: TracesExporter) -> SpanExporter:
    if kind == "console":
        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigurationError(
            "OTEL_TRACES_EXPORTER: otlp needs the OTLP exporter: pip install 'a4c[otlp]'"
        ) from None
    exporter: SpanExporter = OTLPSpanExporter()
    return exporter


def tracing_interceptor(
    kind: TracesExporter, *, processor: SpanProcessor | None = None
) -> TracingInterceptor | None:
    """The interceptor for worker and client, or ``None`` when tracing is off.

    ``processor`` replaces the exporter (tests pass one over an in-memory exporter).
    """
    if kind == "none" and processor is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(processor or BatchSpanProcessor(_exporter(kind)))
    return TracingInterceptor(
        tracer=provider.get_tracer("a4c_worker"), always_create_workflow_spans=True
    )


def current_trace_ids() -> tuple[str | None, str | None]:
    """Hex trace and span id of the active span, or ``(None, None)`` outside any trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
