"""Small helpers shared by benchmarks: fresh schemas, timed concurrent writers, JSON lines.

Benchmarks report ratios against a baseline measured in the same run: machines are
noisy, absolute figures are only context.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

# Where the PostgreSQL the benches use is: libpq's own variables, the local server by
# default (tests/test_benches.py passes the test server's).
PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
    "dbname": os.environ.get("PGDATABASE", "test"),
}
CONNINFO = " ".join(f"{key}={value}" for key, value in PG.items())


def postgres_env(schema: str) -> dict[str, str]:
    """The eventsourcing environment of an event store in ``schema`` of that server."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PG["dbname"],
        "POSTGRES_HOST": PG["host"],
        "POSTGRES_PORT": PG["port"],
        "POSTGRES_USER": PG["user"],
        "POSTGRES_PASSWORD": os.environ.get("PGPASSWORD", ""),
        "POSTGRES_SCHEMA": schema,
    }


def emit(record: dict[str, Any]) -> None:
    """One benchmark result: one JSON object on one line of stdout."""
    sys.stdout.write(json.dumps(record, sort_keys=False) + "\n")
    sys.stdout.flush()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time ``pid`` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, all) CPU seconds of every core since boot (Linux /proc/stat): the share of
    the machine in use over an interval is the ratio of the two differences."""
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


@contextmanager
def fresh_schema(conninfo: str, prefix: str = "bench") -> Iterator[str]:
    """A new, empty PostgreSQL schema, dropped afterwards whatever happens."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[arg-type]
    try:
        yield schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


@dataclass(frozen=True)
class WriterResult:
    """What ``n`` concurrent writers achieved together."""

    events: int
    seconds: float  # wall time from the common start to the last writer's end
    cpu_seconds: float  # CPU the writers spent (all of them), to see who was the limit

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_share(self) -> float:
        """CPU seconds per wall second per writer: near 1.0 means CPU-bound writers."""
        return self.cpu_seconds / self.seconds


# A writer: given (its index, events to write, setup args), set up outside the timed part
# and return a callable that writes them.
Writer = Callable[..., Callable[[], None]]


def _writer_main(
    prepare: Writer, index: int, count: int, args: Any, barrier: Any, out: Any
) -> None:
    try:
        write = prepare(index, count, args)
        barrier.wait(timeout=120)
        start, cpu_start = time.monotonic(), time.thread_time()
        write()
        out.put((index, time.monotonic() - start, time.thread_time() - cpu_start, None))
    except BaseException as exc:  # report instead of leaving the parent waiting
        barrier.abort()
        out.put((index, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))


def run_writers(
    prepare: Writer, writers: int, events: int, args: Any, *, processes: bool = True
) -> WriterResult:
    """Run ``writers`` concurrent writers of ``events`` events in total, in lockstep start.

    Processes by default: a Python command path is CPU-heavy enough that threads would
    measure the GIL rather than the database (``--threads`` to see the difference).
    """
    per_writer = [events // writers + (1 if i < events % writers else 0) for i in range(writers)]
    if processes:
        ctx = multiprocessing.get_context("spawn")
        barrier: Any = ctx.Barrier(writers)
        out: Any = ctx.Queue()
        workers: list[Any] = [
            ctx.Process(target=_writer_main, args=(prepare, i, n, args, barrier, out))
            for i, n in enumerate(per_writer)
        ]
    else:
        import queue
        import threading

        barrier = threading.Barrier(writers)
        out = queue.Queue()
        workers = [
            threading.Thread(target=_writer_main, args=(prepare, i, n, args, barrier, out))
            for i, n in enumerate(per_writer)
        ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    errors = [error for *_, error in results if error]
    if errors:
        raise RuntimeError(f"writer failed: {errors[0]}")
    return WriterResult(
        events=events,
        seconds=max(seconds for _, seconds, _, _ in results),
        cpu_seconds=sum(cpu for _, _, cpu, _ in results),
    )
