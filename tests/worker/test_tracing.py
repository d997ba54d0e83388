"""Tracing, when on: one trace from workflow to activities to the events they record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from tests.support import TOKEN_SECRET
from tests.worker.flows import Flows, bootstrap_input, sqlite_app

from a4c_domain import organization_id
from a4c_worker.activities import OnboardingActivities
from a4c_worker.client import start_bootstrap
from a4c_worker.config import SettingsError, load_settings
from a4c_worker.tracing import current_trace_ids, tracing_interceptor
from a4c_worker.worker import create_worker


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    yield Flows(app, temporal_client, task_queue)
    app.close()


def test_off_by_default() -> None:
    assert tracing_interceptor("none") is None
    assert current_trace_ids() == (None, None)


async def test_workflow_activity_and_event_metadata_share_one_trace(flows: Flows) -> None:
    exporter = InMemorySpanExporter()
    interceptor = tracing_interceptor("none", processor=SimpleSpanProcessor(exporter))
    assert interceptor is not None
    acts: OnboardingActivities = flows.activities()
    # The starter traces too: its StartWorkflow span is the root the worker continues.
    config = flows.client.config()
    config["interceptors"] = [interceptor]
    client = Client(**config)
    async with create_worker(client, flows.task_queue, acts.all()):
        handle = await start_bootstrap(
            client, bootstrap_input("traced", invitees=1), flows.task_queue
        )
        await handle.result()

    spans = exporter.get_finished_spans()
    names = {s.name for s in spans}
    assert any(n.startswith("RunWorkflow:OrganizationBootstrapWorkflow") for n in names)
    assert "RunActivity:register_organization" in names
    traces = {f"{s.context.trace_id:032x}" for s in spans if "Invitation" not in s.name}
    assert len(traces) == 1, sorted((s.name, s.context.trace_id) for s in spans)
    (trace_id,) = traces

    activity_spans = {
        f"{s.context.span_id:016x}" for s in spans if s.name.startswith("RunActivity:")
    }
    org_events = [e for e in flows.events() if e[1] == organization_id("traced")]
    assert org_events
    for _, _, _, metadata in flows.events():
        assert metadata["trace_id"] == trace_id
        assert metadata["span_id"] in activity_spans


def test_the_worker_setting_is_the_standard_variable_and_is_validated() -> None:
    base = {"WORKFLOW_MODE": "development", "A4C_TOKEN_SECRET": TOKEN_SECRET}
    assert load_settings(base).otel_traces_exporter == "none"
    assert load_settings(base | {"OTEL_TRACES_EXPORTER": "console"}).otel_traces_exporter == (
        "console"
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(base | {"OTEL_TRACES_EXPORTER": "zipkin"})
    assert caught.value.variables == ["OTEL_TRACES_EXPORTER"]
