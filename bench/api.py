"""Benchmark: a4c-api's reads at 50 concurrent clients, against its own trivial route.

A store is seeded through the domain (``OnboardingApplication``: one organization,
activated, one invitation; the token key is the bench's own, so it can compute the
invitation's token as the e-mail link would carry it), projected once with the
projector's own ``Projector.catch_up``, and served by the real console script
``a4c-api run`` in a process of its own on a free port, as in production (uvicorn, one
process, the access log on). Then, one route after the other, ``--clients`` concurrent
clients (asyncio tasks, each with an ``httpx.AsyncClient`` and so a keep-alive
connection of its own) request it back to back for ``--seconds``. (One client shared by
all, with a pool of as many connections, was measured 7 times slower than this on the
same server: its pool, not the server, was the limit.)

* ``/health`` — the baseline: the same server, middleware and client, no work;
* the invitee's page: each client first opens the link ``/invitations/accept?token=…``
  as a browser does, following its redirects (the page moves the token into the
  session cookie and redirects to the bare path), then requests the page it landed on
  (session, a token lookup in the read models, a template), as a reload does;
* ``GET /v1/organizations/{slug}`` — with an operator API key (key check, read model).

One JSON line per route: requests/s, p50/p99 latency, the status codes seen (a route
not served yet shows up as its 404s: read ``statuses`` before the figures), the CPU the
server and the clients used per wall second (``server_cpu``, ``client_cpu``: a server
near 1.0 is the limit, as it should be; clients near 1.0 mean the machine is too small
to tell), and for the two reads their ratio to the baseline (``rps_ratio`` =
route/baseline, ``p99_ratio``).
Temporal is not needed: the API connects to it in the background, and these reads do
not use it. The event store and read models are a SQLite file by default, PostgreSQL
(a fresh schema, dropped afterwards) with ``--postgres``.

    .venv/bin/python bench/api.py [--seconds 10] [--clients 50] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from a4c_api.cli import new_key
from a4c_domain import OnboardingApplication
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.readmodel.tables import ensure_schema
from a4c_worker.config import ACCEPT_PATH
from common import CONNINFO, cpu_seconds, emit, fresh_schema, postgres_env, ratio

TOKEN_SECRET = "bench-api-token-secret-0123456789abcdefgh"
SLUG = "bench-acme"
WARM_UP_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def store(postgres: bool) -> Iterator[dict[str, str]]:
    """The event store's environment: a SQLite file, or a fresh PostgreSQL schema."""
    if postgres:
        with fresh_schema(CONNINFO, prefix="bench_api") as schema:
            yield postgres_env(schema)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
            yield {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(Path(folder) / "events.sqlite"),
            }


def seed(env: dict[str, str]) -> str:
    """An active organization with one invitation, projected; the invitation's token."""
    app = OnboardingApplication(env, token_secret=TOKEN_SECRET)
    try:
        org = app.register_organization(name="Bench Acme", slug=SLUG, org_type="provider")
        app.activate(organization_id=org.id)
        invitation = app.invite(
            organization_id=org.id,
            email="ada@bench.example.com",
            role="admin",
            first_name="Ada",
            last_name="Lovelace",
        )
        token = app.invitation_token(invitation.id, org.id)
    finally:
        app.close()
    event_store = open_event_store(env)
    with connect(event_store.location) as db:
        ensure_schema(db)
    projector = Projector(event_store.location, event_store.mapper)
    try:
        projector.catch_up()
    finally:
        projector.close()
    return token


@contextmanager
def served(env: dict[str, str], api_keys: str) -> Iterator[tuple[str, int]]:
    """``a4c-api run`` on a free port, in a process of its own; its base URL and pid."""
    port = free_port()
    child_env = (
        os.environ
        | env
        | {
            "API_MODE": "development",  # production would need a provider and secrets
            "API_PORT": str(port),
            "API_KEYS": api_keys,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # none: reads do not need it
            "LOG_FORMAT": "json",
        }
    )
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "a4c-api"), "run"],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"a4c-api exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("a4c-api did not answer /health within 60 s")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


async def load(
    pool: list[httpx.AsyncClient],
    server_pid: int,
    url: str,
    headers: dict[str, str],
    seconds: float,
) -> dict[str, Any]:
    """Every client of ``pool`` requesting ``url`` back to back for ``seconds``."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def one_client(client: httpx.AsyncClient, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            began = time.perf_counter()
            response = await client.get(url, headers=headers)
            if record:
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] += 1

    warm_until = time.perf_counter() + WARM_UP_SECONDS
    await asyncio.gather(*(one_client(client, warm_until, False) for client in pool))
    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    began = time.perf_counter()
    until = began + seconds
    await asyncio.gather(*(one_client(client, until, True) for client in pool))
    elapsed = time.perf_counter() - began
    server_cpu = cpu_seconds(server_pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "server_cpu": round(server_cpu / elapsed, 2),
        "client_cpu": round(client_cpu / elapsed, 2),
    }


async def open_link(pool: list[httpx.AsyncClient], link: str) -> tuple[str, int]:
    """Every client opens the e-mail link as a browser does, following its redirects
    (the page keeps the token in the session cookie, each client its own); the URL they
    land on, which the page's reloads request, and how many redirects led there."""
    landed = await asyncio.gather(*(client.get(link, follow_redirects=True) for client in pool))
    return str(landed[0].url), len(landed[0].history)


async def run(
    base: str, server_pid: int, token: str, key: str, clients: int, seconds: float
) -> None:
    pool = [httpx.AsyncClient(base_url=base, timeout=30) for _ in range(clients)]
    try:
        page, redirects = await open_link(pool, f"{ACCEPT_PATH}?token={token}")
        routes: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
            ("/health", "/health", {}, {}),
            # The landed URL may hold the token: only its count of redirects is shown.
            (ACCEPT_PATH, page, {}, {"link_redirects": redirects}),
            (
                "/v1/organizations/{slug}",
                f"/v1/organizations/{SLUG}",
                {"Authorization": f"Bearer {key}"},
                {},
            ),
        ]
        baseline: dict[str, Any] | None = None
        for route, url, headers, notes in routes:
            figures = await load(pool, server_pid, url, headers, seconds)
            record: dict[str, Any] = {"bench": "api", "route": route, "clients": clients}
            record.update(figures)
            record.update(notes)
            if baseline is None:
                baseline = figures
                record["baseline"] = True
                # Context for the figures: on a shared machine the CPU shares say more.
                record["cpus"] = os.cpu_count()
                record["load_1m"] = round(os.getloadavg()[0], 2)
            else:
                record["rps_ratio"] = ratio(figures["per_second"], baseline["per_second"])
                record["p99_ratio"] = ratio(figures["p99_ms"], baseline["p99_ms"])
            emit(record)
    finally:
        for client in pool:
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per route (default 10)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    key, grant = new_key("bench", None)
    with store(args.postgres) as env:
        token = seed(env)
        with served(env, grant.entry()) as (base, pid):
            asyncio.run(run(base, pid, token, key, args.clients, args.seconds))


if __name__ == "__main__":
    main()
