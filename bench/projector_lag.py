"""Benchmark: live lag from commit to read-model visibility, on PostgreSQL at steady load.

Everything is the production shape: a fresh schema (dropped afterwards) in the default
lock-free insert mode (``POSTGRES_ENABLE_DB_FUNCTIONS=y``); the projector is the real
daemon, ``python -m a4c_projector run``, in its own process, following the store with
LISTEN/NOTIFY; ``--writers`` writer *processes* issue domain commands (one event each:
register, configure and verify DNS, invite, record the e-mail, activate, accept) on a
fixed schedule adding up to ``--rate`` events/s, for ``--seconds``.

How lag is measured, and why it is honest:

* **commit**: a writer stamps ``time.monotonic()`` (one clock for every process on
  Linux) right after the command returns — after the commit, so a little later than
  the commit itself: the figure errs on the long side. The command's view carries the
  event's notification id.
* **visible**: an observer process polls the projection's position every
  ``--poll-ms`` and stamps the first moment it reaches each id. The position and the
  read-model rows commit in one transaction, so "position ≥ id" is exactly "this
  event and every one before it are in the read model" — what a reader waiting with
  ``queries.wait_until`` sees. The polling adds up to one interval (and errs long too).

Lag = visible - commit, per event. Prints one JSON line: events, the rate achieved over
the writers' real span, p50/p99/max in ms, the writers' own latency as a yardstick, the
ordering floor (:func:`lag_trace.ordering_floor`) and the CPU used. ``--stored``: the
writers insert events made beforehand instead of issuing commands (past the rate the
cores can command); ``--trace``: where the lag went (bench/lag_trace.py).

    .venv/bin/python bench/projector_lag.py [--seconds 30] [--rate 200] [--writers 4]
        [--stored] [--trace]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent

from a4c_domain import OnboardingApplication
from common import CONNINFO, cpu_seconds, emit, fresh_schema, machine_cpu_seconds
from lag_trace import explain, ordering_floor
from projector_catchup import store_env

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


# --- writers ---------------------------------------------------------------------------


def one_event_commands(app: OnboardingApplication, prefix: str) -> Iterator[Any]:
    """An endless stream of commands, each storing exactly one event."""
    n = 0
    while True:
        slug = f"{prefix}-{n}"
        org = app.register_organization(
            name=f"Org {slug}", slug=slug, org_type="provider", domain=f"{slug}.example.test"
        )
        yield org
        yield app.configure_dns(
            organization_id=org.id,
            fqdn=f"{slug}.example.test",
            target="ingress.example.test",
            record_id=f"rec-{slug}",
        )
        yield app.verify_dns(organization_id=org.id)
        inv = app.invite(
            organization_id=org.id,
            email=f"owner@{slug}.example.com",
            role="admin",
            first_name="Ada",
            last_name="Lovelace",
        )
        yield inv
        yield app.record_email_sent(
            organization_id=org.id, invitation_id=inv.id, token_generation=1, message_id="m"
        )
        yield app.activate(organization_id=org.id)
        yield app.accept_invitation(
            organization_id=org.id,
            invitation_id=inv.id,
            token=app.invitation_token(inv.id, org.id),
            user_id=f"u-{slug}",
        )
        n += 1


def writer(
    env: dict[str, str],
    prefix: str,
    interval: float,
    schedule: tuple[float, float, Any, EventType],
    stored: bool,
    out: Any,
) -> None:
    """Writes on a fixed schedule (no drift); (notification id, commit time, latency)
    of each, and the CPU seconds the writer used. ``schedule``: its offset and length,
    and the common start (set by the parent once every writer is ready, then the event)."""
    try:
        count = math.ceil(schedule[1] / interval)
        write = stored_writes(env, prefix, count) if stored else commands(env, prefix)
        out.put(("ready", prefix))
        schedule[3].wait()
        begin = schedule[2].value + schedule[0]
        cpu = time.process_time()
        records = scheduled(write, interval, begin, count)
        out.put((records, time.process_time() - cpu))
    except Exception as exc:  # reported to the parent, which fails the benchmark
        out.put(f"writer {prefix} failed: {type(exc).__name__}: {exc}")


def commands(env: dict[str, str], prefix: str) -> Callable[[], int]:
    """Each call: the next domain command (one event), its notification id."""
    stream = one_event_commands(OnboardingApplication(env), prefix)

    def write() -> int:
        view = next(stream)
        assert view.position is not None, "every scheduled command stores one event"
        return int(view.position)

    return write


def stored_writes(env: dict[str, str], prefix: str, count: int) -> Callable[[], int]:
    """Each call: one of the same commands' events, made beforehand in memory, inserted
    as the command would (the recorder's insert, one event per transaction, its NOTIFY):
    the writers' Python then costs next to nothing, so the rate can pass what the
    machine's cores could command."""
    memory = OnboardingApplication({**env, "PERSISTENCE_MODULE": "eventsourcing.popo"})
    stream = one_event_commands(memory, prefix)
    for _ in range(count):
        next(stream)
    events = [
        StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
        for n in memory.recorder.select_notifications(start=1, limit=count)
    ]
    store = OnboardingApplication(env)  # held: its connection pool closes with it
    pending = iter(events)

    def write() -> int:
        ids = store.recorder.insert_events([next(pending)])
        assert ids, "the PostgreSQL recorder returns the notification ids"
        return int(ids[0])

    return write


def scheduled(
    write: Callable[[], int], interval: float, begin: float, count: int
) -> list[tuple[int, float, float]]:
    records: list[tuple[int, float, float]] = []
    due = begin
    for _ in range(count):
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        issued = time.monotonic()
        notification_id = write()
        committed = time.monotonic()
        records.append((notification_id, committed, committed - issued))
        due += interval
    return records


# --- observer --------------------------------------------------------------------------


def observer(schema: str, poll: float, stop: EventType, out: Any) -> None:
    """(position, first time seen) for every change of the projection's position."""
    seen: list[tuple[int, float]] = []
    last = -1
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        query = f'SELECT position FROM "{schema}".projector_tracking WHERE projection = %s'
        statement = query.encode()
        while not stop.is_set():
            row = conn.execute(statement, ("a4c",), prepare=True).fetchone()
            now = time.monotonic()
            if row is not None and row[0] != last:
                last = row[0]
                seen.append((last, now))
            time.sleep(poll)
    out.put(seen)


def visible_at(seen: list[tuple[int, float]], notification_id: int) -> float | None:
    """When the position first reached ``notification_id`` (``seen`` is increasing)."""
    low, high = 0, len(seen)
    while low < high:
        middle = (low + high) // 2
        if seen[middle][0] < notification_id:
            low = middle + 1
        else:
            high = middle
    return seen[low][1] if low < len(seen) else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wait_for_projector(schema: str, daemon: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise RuntimeError(f"the projector exited with {daemon.returncode}")
            found = conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                (schema, "projector_tracking"),
            ).fetchone()
            if (
                found
                and conn.execute(
                    f'SELECT 1 FROM "{schema}".projector_tracking WHERE projection = %s',
                    ("a4c",),
                ).fetchone()
            ):
                return
            time.sleep(0.05)
    raise RuntimeError("the projector did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0, help="events/s, all writers")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--poll-ms", type=float, default=1.0)
    parser.add_argument(
        "--stored",
        action="store_true",
        help="writers insert the commands' events made beforehand (a rate past the CPU's)",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="run the projector with timers (bench/lag_trace.py) and say where the lag went",
    )
    args = parser.parse_args()
    trace_file = Path(tempfile.mkdtemp(prefix="a4c-lag-")) / "trace.json"
    ctx = multiprocessing.get_context("spawn")
    with fresh_schema(CONNINFO) as schema:
        env = {**store_env(schema), "POSTGRES_ENABLE_DB_FUNCTIONS": "y"}
        OnboardingApplication(env).close()  # the event store's tables, before anyone races
        daemon_env = {
            "PATH": os.environ.get("PATH", ""),
            **env,
            "PROJECTOR_HTTP_PORT": "0",
            "PROJECTOR_LOG_LEVEL": "WARNING",
            "LAG_TRACE_FILE": str(trace_file),
            "LAG_PROFILE": os.environ.get("LAG_PROFILE", ""),  # with --trace: cProfile's file
        }
        command = [str(BENCH / "lag_trace.py")] if args.trace else ["-m", "a4c_projector"]
        daemon = subprocess.Popen(
            [sys.executable, *command, "run"],
            # PYTHONPATH passed on: the projector runs the code of the checkout the bench is.
            env={**daemon_env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
            cwd=ROOT,
        )
        try:
            wait_for_projector(schema, daemon, timeout=30)
            results = ctx.Queue()
            stop = ctx.Event()
            watch = ctx.Process(target=observer, args=(schema, args.poll_ms / 1000, stop, results))
            watch.start()
            interval = args.writers / args.rate
            offsets = [w * interval / args.writers for w in range(args.writers)]  # staggered
            start, go = ctx.Value("d", 0.0), ctx.Event()
            writers = [
                ctx.Process(
                    target=writer,
                    args=(
                        env,
                        f"w{w}",
                        interval,
                        (offset, args.seconds, start, go),
                        args.stored,
                        results,
                    ),
                )
                for w, offset in enumerate(offsets)
            ]
            for process in writers:
                process.start()
            for _ in writers:  # each has its events or its application ready
                ready = results.get(timeout=600)
                if isinstance(ready, str):
                    raise RuntimeError(ready)
            begin = start.value = time.monotonic() + 0.5
            go.set()
            time.sleep(max(0.0, begin - time.monotonic()))
            machine, projector_cpu = machine_cpu_seconds(), cpu_seconds(daemon.pid)
            records: list[tuple[int, float, float]] = []
            writers_cpu = 0.0
            for _ in writers:
                result = results.get(timeout=args.seconds + 120)
                if isinstance(result, str):
                    raise RuntimeError(result)
                records.extend(result[0])
                writers_cpu += result[1]
            busy, total = (b - a for a, b in zip(machine, machine_cpu_seconds(), strict=True))
            projector_cpu = cpu_seconds(daemon.pid) - projector_cpu
            # Writers behind their schedule go on past the end until every write is issued.
            writing = max(committed for _, committed, _ in records) - begin
            for process in writers:
                process.join()
            time.sleep(1.0)  # let the projector apply the last events
            stop.set()
            seen = results.get(timeout=30)
            watch.join()
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
    ready = ordering_floor(records)
    floor = [(ready[n] - committed) * 1000 for n, committed, _ in records]
    lags: list[float] = []
    unseen = 0
    for notification_id, committed, _ in records:
        visible = visible_at(seen, notification_id)
        if visible is None:
            unseen += 1
        else:
            lags.append(max(0.0, visible - committed) * 1000)
    p99 = percentile(lags, 0.99)
    explained: dict[str, Any] = {}
    if args.trace:
        trace = json.loads(trace_file.read_text())
        explained = explain(records, lambda n: visible_at(seen, n), trace, tail_ms=p99)
    shutil.rmtree(trace_file.parent)
    emit(
        {
            "events": len(records),
            "seconds": args.seconds,
            "target_rate": args.rate,
            "writing_seconds": round(writing, 1),
            "achieved_rate": round(len(records) / writing, 1),
            "writers": args.writers,
            "insert_mode": "POSTGRES_ENABLE_DB_FUNCTIONS=y",
            "writes": "stored events" if args.stored else "domain commands",
            "lag_p50_ms": round(percentile(lags, 0.50), 1),
            "lag_p99_ms": round(p99, 1),
            "lag_max_ms": round(max(lags), 1),
            "not_visible": unseen,
            "command_p50_ms": round(statistics.median(r[2] for r in records) * 1000, 1),
            "command_p99_ms": round(percentile([r[2] * 1000 for r in records], 0.99), 1),
            "order_floor_p50_ms": round(percentile(floor, 0.50), 1),
            "order_floor_p99_ms": round(percentile(floor, 0.99), 1),
            # CPU over the writing: the machine's share busy (1.0: every core), and the
            # cores' worth the writers and the projector (not its database) used.
            "machine_busy": round(busy / total, 2),
            "writers_cpu": round(writers_cpu / writing, 2),
            "projector_cpu": round(projector_cpu / writing, 2),
            "poll_ms": args.poll_ms,
            **({"trace": explained} if explained else {}),
        }
    )


if __name__ == "__main__":
    main()
