"""Every metric an alert rule or a dashboard panel uses is one the processes export.

The real processes, started as an operator runs them: ``a4c-worker run`` (with the
Temporal SDK's metrics on ``TEMPORAL_METRICS_PORT``, as the manifest sets it) after one
bootstrap and one invitation have gone through it, ``a4c-projector run``,
``a4c-api run`` and ``a4c-webhooks run`` (on PostgreSQL, which it needs, once the
projector's read models are there and it holds the delivery lock); their ``/metrics``
scraped over HTTP (the API's on its ``API_METRICS_PORT``). A name counts as exported
when a family with it is announced (``# TYPE``), with the series names that family's
type gives (a histogram's ``_bucket``/``_sum``/``_count``, a counter's ``_total``): a
labelled series nobody has touched yet has no sample, but Prometheus will have it as
soon as it moves.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from a4c_worker.client import start_bootstrap
from a4c_worker.workflows.models import BootstrapInput
from tests.api.test_service import api_process  # noqa: F401  (the fixture, reused)
from tests.projector.conftest import Daemon, parse_metrics
from tests.support import free_port, wait_for
from tests.webhooks.conftest import world  # noqa: F401  (the fixture)
from tests.webhooks.delivery_support import WebhooksDaemon, World
from tests.worker.test_cli import start_worker, stop_worker, worker_env

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "a4c.json"
# What our processes export: a4c's own, the SDK's (temporal_), the process collector's
# and Python's. Anything else in an expression (a function, a label) is not a metric.
METRIC = re.compile(r"\b(?:a4c|temporal|process|python)_[A-Za-z0-9_:]*")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


def exported(text: str) -> set[str]:
    """Every series name the families in ``text`` stand for: their samples' names (what
    Prometheus stores), or for a family with none yet, the names its type gives."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.samples:
            names.update(sample.name for sample in family.samples)
        else:
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def metrics_in(expression: str) -> set[str]:
    return set(METRIC.findall(QUOTED.sub('""', expression)))


def rule_expressions() -> dict[str, str]:
    found: dict[str, str] = {}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            found[rule.get("alert") or rule["record"]] = rule["expr"]
    return found


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panels(panel)  # a row's panels


def panel_expressions() -> dict[str, str]:
    found: dict[str, str] = {}
    for panel in panels(json.loads(DASHBOARD.read_text())):
        for target in panel.get("targets", []):
            found[f"{panel['title']} [{target.get('refId', '?')}]"] = target["expr"]
    return found


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def test_every_expression_names_at_least_one_metric() -> None:
    """Guards the check below: an expression it reads no metric from is checked for nothing."""
    expressions = {**rule_expressions(), **panel_expressions()}
    assert len(rule_expressions()) >= 6 and len(panel_expressions()) >= 10
    assert {where: e for where, e in expressions.items() if not metrics_in(e)} == {}


async def test_the_rules_and_panels_use_only_metrics_the_processes_export(
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
    api_process: tuple[subprocess.Popen[str], str, str],  # noqa: F811
    world: World,  # noqa: F811
) -> None:
    store = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "e.db")}
    sdk_port = free_port()
    env = worker_env(temporal_env, sqlite=tmp_path / "e.db", TEMPORAL_METRICS_PORT=str(sdk_port))
    worker = start_worker(env, tmp_path / "worker.log")
    daemon = Daemon(store)
    # a4c-webhooks on its PostgreSQL schema, the projector's read models in it (one
    # public event projected): active and its database gauges readable once /ready.
    world.activity(world.organization("metric-names"), 1)
    world.project()
    webhooks = WebhooksDaemon(world.env())
    try:
        # Through the worker once, so the SDK's workflow and activity metrics exist.
        spec = BootstrapInput.model_validate(
            {
                "name": "Metric Names",
                "slug": "metric-names",
                "org_type": "partner",
                "invitees": [
                    {
                        "email": "m@example.com",
                        "role": "member",
                        "first_name": "M",
                        "last_name": "N",
                    }
                ],
            }
        )
        handle = await start_bootstrap(temporal_env.client, spec, env["TEMPORAL_TASK_QUEUE"])
        await handle.result()
        daemon.wait_serving()
        wait_for(lambda: webhooks.get("/ready")[0] == 200, 60, "a4c-webhooks active")
        _, _, api_metrics = api_process
        texts = {
            "a4c-worker": scrape(worker.url("/metrics")),
            "a4c-worker (Temporal SDK)": scrape(f"http://127.0.0.1:{sdk_port}/metrics"),
            "a4c-projector": scrape(f"http://127.0.0.1:{daemon.port}/metrics"),
            "a4c-api": scrape(api_metrics),
            "a4c-webhooks": scrape(f"http://127.0.0.1:{webhooks.port}/metrics"),
        }
    finally:
        webhooks.close()
        daemon.close()
        stop_worker(worker)

    names = {process: exported(text) for process, text in texts.items()}
    everything = set().union(*names.values())
    # The scrape read the delivery state from the database (no metrics error counted).
    samples = parse_metrics(texts["a4c-webhooks"])
    assert samples["a4c_webhooks_errors_total{kind=metrics}"] == 0
    assert samples["a4c_webhooks_active"] == 1
    # Every a4c_webhooks_ name a rule or a panel uses is the daemon's own.
    used = set().union(*map(metrics_in, {**rule_expressions(), **panel_expressions()}.values()))
    webhook_names = {name for name in used if name.startswith("a4c_webhooks_")}
    assert len(webhook_names) >= 8, webhook_names
    assert sorted(webhook_names - names["a4c-webhooks"]) == []
    for process in ("a4c-worker", "a4c-projector", "a4c-api", "a4c-webhooks"):
        # Each has the process collector's series (the dashboard's resource panels).
        assert "process_resident_memory_bytes" in names[process], process
    unknown = {
        where: sorted(metrics_in(expression) - everything)
        for where, expression in {**rule_expressions(), **panel_expressions()}.items()
        if metrics_in(expression) - everything
    }
    assert unknown == {}, f"metrics no process exports: {unknown}"
