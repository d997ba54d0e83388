"""Benchmark: appending events on PostgreSQL — our command path vs the bare library vs SQL.

Three ways to write one event per transaction, each into a fresh schema on the local
PostgreSQL (dropped afterwards), with 1 and 4 concurrent writers (processes), in both of
eventsourcing's insert modes (``POSTGRES_ENABLE_DB_FUNCTIONS`` n = table lock per insert,
y = lock-free insert function):

- ``ours``: ``OnboardingApplication.register_organization`` with distinct slugs
  (validation, decision, cause metadata, one event per transaction);
- ``bare``: eventsourcing ``Application.save`` of a trivial aggregate's one event;
- ``raw``: psycopg single-row ``INSERT ... RETURNING notification_id`` into an
  equivalent table (in mode n inside a transaction that takes the same table lock).

One JSON line per (mode, writers): events/s of each path, ``ours_over_bare`` (target
>= 0.8), ``bare_over_raw``, the writers' CPU share (near 1.0 per writer = CPU-bound),
and on the lock-free 4-writer line ``bare_y4_over_bare_n4`` (the mode's gain). Each
path is measured ``--rounds`` times, interleaved, and the best round is kept.

    .venv/bin/python bench/append.py [--events 1000] [--rounds 3] [--threads]
"""

from __future__ import annotations

import argparse
import os
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from a4c_domain import OnboardingApplication
from common import WriterResult, emit, fresh_schema, ratio, run_writers

TOKEN_SECRET = "bench-append-token-secret-0123456789abcdef"
MODES = {"n": "table-lock", "y": "lock-free"}
WARMUP = 20


def pg_env(args: argparse.Namespace, schema: str, mode: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": args.dbname,
        "POSTGRES_HOST": args.host,
        "POSTGRES_PORT": str(args.port),
        "POSTGRES_USER": args.user,
        "POSTGRES_PASSWORD": args.password,
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_ENABLE_DB_FUNCTIONS": mode,
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
    }


# --- the three paths: each prepares (untimed) and returns the timed write loop ----------


def prepare_ours(index: int, count: int, env: dict[str, str]) -> Any:
    app = OnboardingApplication(env)
    for i in range(WARMUP):
        app.register_organization(name="Warm", slug=f"warm-{index}-{i}", org_type="provider")

    def write() -> None:
        for i in range(count):
            app.register_organization(name="Bench Org", slug=f"w{index}-{i}", org_type="provider")
        app.close()

    return write


class Thing(Aggregate):
    """The smallest aggregate: one ``Created`` event."""

    def __init__(self, n: int) -> None:
        self.n = n


class BareApplication(Application[UUID]):
    name = "bare"


def prepare_bare(index: int, count: int, env: dict[str, str]) -> Any:
    app = BareApplication(env)
    for i in range(WARMUP):
        app.save(Thing(i))

    def write() -> None:
        for i in range(count):
            app.save(Thing(i))
        app.close()

    return write


def raw_conninfo(env: dict[str, str]) -> str:
    return (
        f"host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} "
        f"dbname={env['POSTGRES_DBNAME']} user={env['POSTGRES_USER']} "
        f"password={env['POSTGRES_PASSWORD']}"
    )


def prepare_raw(index: int, count: int, env: dict[str, str]) -> Any:
    import uuid

    schema = env["POSTGRES_SCHEMA"]
    lock = env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"
    conn = psycopg.connect(raw_conninfo(env), autocommit=True)
    insert = (
        f'INSERT INTO "{schema}".raw_events (originator_id, originator_version, topic, state) '
        "VALUES (%s, 1, 'bench:Raw', %s) RETURNING notification_id"
    )
    state = b'{"timestamp":"2030-01-01T00:00:00+00:00","n":1}'

    def one() -> None:
        if lock:
            with conn.transaction():
                conn.execute(f'LOCK TABLE "{schema}".raw_events IN EXCLUSIVE MODE')  # type: ignore[arg-type]
                conn.execute(insert, (uuid.uuid4(), state), prepare=True).fetchone()  # type: ignore[arg-type]
        else:
            conn.execute(insert, (uuid.uuid4(), state), prepare=True).fetchone()  # type: ignore[arg-type]

    for _ in range(WARMUP):
        one()

    def write() -> None:
        for _ in range(count):
            one()
        conn.close()

    return write


def create_tables(args: argparse.Namespace, schema: str, mode: str) -> dict[str, str]:
    """Create every table up front so the timed writers never race to create them."""
    env = pg_env(args, schema, mode)
    OnboardingApplication(env).close()
    BareApplication(env).close()
    # Writers start together: their own DDL (eventsourcing re-creates the insert function
    # on every start) would race and is not what is measured.
    env["CREATE_TABLE"] = "n"
    with psycopg.connect(raw_conninfo(env), autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{schema}".raw_events (originator_id uuid NOT NULL, '  # type: ignore[arg-type]
            "originator_version bigint NOT NULL, topic text, state bytea, "
            "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute(
            f'CREATE UNIQUE INDEX ON "{schema}".raw_events (notification_id)'  # type: ignore[arg-type]
        )
    return env


PATHS = {"ours": prepare_ours, "bare": prepare_bare, "raw": prepare_raw}


def measure(args: argparse.Namespace, path: str, mode: str, writers: int) -> WriterResult:
    conninfo = raw_conninfo(pg_env(args, "", mode))
    with fresh_schema(conninfo, prefix="bench_append") as schema:
        env = create_tables(args, schema, mode)
        return run_writers(PATHS[path], writers, args.events, env, processes=not args.threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="repeats; the best is kept")
    parser.add_argument("--writers", default="1,4", help="comma-separated writer counts")
    parser.add_argument("--modes", default="n,y", help="POSTGRES_ENABLE_DB_FUNCTIONS values")
    parser.add_argument("--threads", action="store_true", help="threads instead of processes")
    parser.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PGPORT", "5432")))
    parser.add_argument("--dbname", default=os.environ.get("PGDATABASE", "test"))
    parser.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    parser.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    args = parser.parse_args()

    bare_at: dict[tuple[str, int], float] = {}
    for mode in args.modes.split(","):
        for writers in (int(w) for w in args.writers.split(",")):
            best: dict[str, WriterResult] = {}
            for _ in range(args.rounds):
                for path in PATHS:  # interleaved, so drift hits every path alike
                    result = measure(args, path, mode, writers)
                    if path not in best or result.events_per_s > best[path].events_per_s:
                        best[path] = result
            bare_at[(mode, writers)] = best["bare"].events_per_s
            record: dict[str, Any] = {
                "bench": "append",
                "mode": MODES.get(mode, mode),
                "writers": writers,
                "concurrency": "threads" if args.threads else "processes",
                "events": args.events,
                **{f"{p}_events_per_s": round(r.events_per_s, 1) for p, r in best.items()},
                "ours_over_bare": ratio(best["ours"].events_per_s, best["bare"].events_per_s),
                "bare_over_raw": ratio(best["bare"].events_per_s, best["raw"].events_per_s),
                **{
                    f"{p}_cpu_share_per_writer": round(r.cpu_share / writers, 2)
                    for p, r in best.items()
                },
            }
            if mode == "y" and ("n", writers) in bare_at:
                record[f"bare_y{writers}_over_bare_n{writers}"] = ratio(
                    bare_at[("y", writers)], bare_at[("n", writers)]
                )
            emit(record)


if __name__ == "__main__":
    main()
