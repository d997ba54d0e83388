"""Benchmark: projector catch-up on PostgreSQL, against one event per transaction.

Seeds a fresh schema (dropped afterwards) with ``--events`` domain events written by the
domain application itself (aggregates built by their own command methods, saved many
aggregates per ``app.save`` so seeding is quick). The log is realistic: organizations
registered, DNS configured / verified, activated, a few deactivated; two or three
invitations each, e-mailed, some failing and re-sent, accepted, revoked or expired.
Aggregates advance phase by phase over chunks of organizations, so one aggregate's
events are spread over thousands of notification ids, as they are when many bootstraps
run at once (a batch rarely holds a whole aggregate history).

Two projections of the same events, same database, same run:

* **ours**: :class:`a4c_projector.engine.projector.Projector` catching up from 0 with the
  default batch size or ``--batch-size`` (guard, decode, handlers, version-guarded
  upserts, applied log and tracking position in one transaction per batch);
* **baseline**: eventsourcing's own ``ProjectionRunner`` with a ``PostgresTrackingRecorder``
  view whose projection upserts the same read-model rows (same handlers, same
  statements) and records the tracking position, one event per transaction — the stock
  pattern. It runs for ``--baseline-events`` events or ``--baseline-seconds``, whichever
  comes first, and its rate is events/s over that prefix.

Prints one JSON line. ``--rebuild-events 1000000`` seeds that many events instead and
also times ``a4c_projector.maintenance.rebuild.rebuild`` of all of them (fresh tables built beside
the live ones, checked row by row against them, swapped in) while a reader keeps
querying the live organizations table: the rebuild's events/s and the longest any of
those reads waited (the swap takes the live tables' lock briefly).

    .venv/bin/python bench/projector_catchup.py [--events 100000] [--batch-size N]
        [--rebuild-events N]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from psycopg.sql import SQL, Identifier

from a4c_domain import Invitation, OnboardingApplication, Organization
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.maintenance.rebuild import rebuild
from a4c_projector.readmodel.handlers import RowChange, RowHandlers
from a4c_projector.readmodel.tables import TableSet, ensure_schema
from a4c_projector.readmodel.writer import change_statement
from a4c_projector.settings import DEFAULT_BATCH_SIZE
from catchup_profile import Phases, profiled
from common import CONNINFO, emit, fresh_schema, postgres_env

TOKEN_SECRET = "bench-token-secret-0123456789abcdefghij"
CHUNK_ORGS = 400  # organizations advanced together, phase by phase
BASELINE_SUFFIX = "__baseline"


def store_env(schema: str) -> dict[str, str]:
    return {**postgres_env(schema), "A4C_TOKEN_SECRET": TOKEN_SECRET}


# --- seeding ---------------------------------------------------------------------------


def seed_chunk(app: OnboardingApplication, first: int, count: int) -> int:
    """``count`` organizations with their invitations, phase by phase; events written."""
    written = 0

    def save(*aggregates: Any) -> None:
        nonlocal written
        pending = sum(len(a.pending_events) for a in aggregates)
        if pending:
            app.save(*aggregates)
            written += pending

    now = datetime.now(UTC)
    orgs = [
        Organization(
            name=f"Organization {n}",
            slug=f"org-{n}",
            org_type="provider" if n % 4 else "partner",
            parent_id=None,
            tags=[f"region-{n % 5}", "bench"],
            domain=None if n % 10 == 0 else f"org-{n}.example.test",
        )
        for n in range(first, first + count)
    ]
    save(*orgs)
    with_dns = [o for o in orgs if o.domain is not None]
    for org in with_dns:
        org.configure_dns(
            f"{org.slug}.orgs.example.test", "ingress.example.test", f"rec-{org.slug}"
        )
    save(*with_dns)
    for org in with_dns:
        org.verify_dns()
    save(*with_dns)
    invitations: list[Invitation] = []
    for index, org in enumerate(orgs):
        for k in range(2 + index % 2):
            email = f"user{k}@{org.slug}.example.test"
            inv_id = Invitation.create_id(org.id, email, 1)
            invitations.append(
                Invitation(
                    organization_id=org.id,
                    email=email,
                    role="admin" if k == 0 else "member",
                    first_name=f"First{k}",
                    last_name=org.slug,
                    generation=1,
                    token_hash=app.tokens.token_hash(inv_id, 1),
                    expires_at=now + timedelta(days=7),
                )
            )
    save(*invitations)
    for index, inv in enumerate(invitations):
        if index % 7 == 3:
            inv.record_email_failed(1, "mailbox unavailable")
            inv.reissue_token(2, app.tokens.token_hash(inv.id, 2), now + timedelta(days=7))
            inv.record_email_sent(2, f"msg-{inv.id}-2")
        else:
            inv.record_email_sent(1, f"msg-{inv.id}")
    save(*invitations)
    for index, org in enumerate(orgs):
        if index % 20 == 13:
            org.deactivate("bootstrap cancelled", "activate")
        else:
            org.activate()
    save(*orgs)
    deactivated = {org.id for org in orgs if org.is_deactivated}
    for index, inv in enumerate(invitations):
        if inv.organization_id in deactivated:
            inv.revoke("organization deactivated")  # what the application's deactivate does
        elif index % 11 == 5:
            inv.revoke("left the company")
        elif index % 13 == 7:
            inv.expire(now + timedelta(days=8))
        elif index % 3 != 2:
            token = app.tokens.token(inv.id, inv.token_generation)
            inv.accept(token, f"user-{inv.id}", now, organization_active=True)
    save(*invitations)
    return written


def seed(app: OnboardingApplication, events: int) -> int:
    """At least ``events`` events; returns how many were written."""
    written = 0
    first = 0
    while written < events:
        written += seed_chunk(app, first, CHUNK_ORGS)
        first += CHUNK_ORGS
    return written


def settle(schema: str) -> None:
    """``VACUUM ANALYZE`` the freshly loaded log before anything is timed.

    Otherwise autovacuum wakes up for the new rows in the middle of whichever projection
    runs first, and the first reader of each page pays for setting its hint bits: noise
    of the order of the effect measured. A store in service has both done long ago.
    """
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema}".a4c_events')  # type: ignore[arg-type]


def commit_latency_ms(schema: str, commits: int = 200) -> float:
    """Median time of a one-row durable commit: the floor under the baseline's rate,
    printed so that runs on disks of different speed can be told apart."""
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".commit_probe (n int)')  # type: ignore[arg-type]
        times = []
        for n in range(commits):
            began = time.perf_counter()
            conn.execute(f'INSERT INTO "{schema}".commit_probe VALUES (%s)', (n,))  # type: ignore[arg-type]
            times.append(time.perf_counter() - began)
    return round(sorted(times)[len(times) // 2] * 1000, 3)


# --- baseline: eventsourcing's ProjectionRunner, one event per transaction --------------


class ReadModelView(PostgresTrackingRecorder):
    """A materialised view in the eventsourcing style: one transaction per event.

    Writes the same rows as the projector (same handlers, same version-guarded
    statements, via :func:`a4c_projector.readmodel.writer.change_statement`) into its own table
    set, plus the tracking record, and commits.
    """

    tables: TableSet = TableSet(BASELINE_SUFFIX)

    def apply(self, change: RowChange, tracking: Tracking) -> None:
        table = Identifier(self.datastore.schema, getattr(self.tables, change.table))
        statement, params = change_statement(table.as_string(None), change, datetime.now(UTC))
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(statement.encode(), params)
            self._insert_tracking(curs, tracking)


class ReadModelProjection(Projection[ReadModelView]):
    name = "baseline"
    handlers = RowHandlers()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        change = self.handlers.changes(domain_event)
        if change is None:  # a domain claim: no row, only the tracking record
            self.view.insert_tracking(tracking)
            return
        change.position = tracking.notification_id
        self.view.apply(change, tracking)


def measure_baseline(env: dict[str, str], max_events: int, max_seconds: float) -> tuple[int, float]:
    """Events and seconds of the stock runner over a prefix of the log.

    Timed from its first tracked event (start-up, table creation and the first
    subscription query are left out) until ``max_events`` or ``max_seconds``.
    """
    store = open_event_store(env)
    with connect(store.location) as db:
        ensure_schema(db, ReadModelView.tables)
    with ProjectionRunner(
        application_class=OnboardingApplication,
        projection_class=ReadModelProjection,
        view_class=ReadModelView,
        env={**env, "CREATE_TABLE": "y"},
    ) as runner:
        first: tuple[int, float] | None = None
        deadline = time.perf_counter() + max_seconds
        while True:
            runner.run_forever(timeout=0.05)  # re-raises an error of the runner's thread
            done, now = runner.view.max_tracking_id("a4c") or 0, time.perf_counter()
            if first is None and done:
                first = (done, now)
            if done >= max_events or now >= deadline:
                break
    assert first is not None, "the baseline runner applied nothing"
    return done - first[0], now - first[1]


# --- ours ------------------------------------------------------------------------------


def measure_ours(env: dict[str, str], batch_size: int, detail: str) -> dict[str, Any]:
    """Our catch-up from 0 into the live tables; ``detail``: "phases" (timers per step,
    read-ahead off: see ``catchup_profile``), "profile" (cProfile to stderr) or ""."""
    store = open_event_store(env)
    projector = Projector(store.location, store.mapper, projection="a4c", batch_size=batch_size)
    phases = Phases()
    try:
        projector.db  # noqa: B018 - connect and create the tables outside the timing
        if detail == "phases":
            phases.install(projector)
        with profiled() if detail == "profile" else nullcontext(io.StringIO()) as profile:
            started, cpu_started = time.perf_counter(), time.process_time()
            position = projector.catch_up()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started  # every thread's: read-ahead's too
    finally:
        projector.close()
    print(profile.getvalue(), file=sys.stderr)
    figures: dict[str, Any] = {"position": position, "seconds": elapsed, "cpu_seconds": cpu}
    if detail == "phases":
        figures["phases"] = phases.report(elapsed)
    return figures


# --- the physical limit: the same rows read undecoded, the final rows written by COPY --


PHYSICAL_SUFFIX = "__physical"


def dump_final_rows(conn: psycopg.Connection[Any], schema: str, files: ExitStack) -> dict[str, Any]:
    """Each non-empty live read-model table as binary ``COPY`` data in a temporary file,
    and an empty table beside it with the same columns, constraints and indexes."""
    dumps: dict[str, Any] = {}
    for table in TableSet().all:
        live = Identifier(schema, table)
        fresh = Identifier(schema, table + PHYSICAL_SUFFIX)
        conn.execute(SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(fresh, live))
        dump = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by files
        with conn.cursor().copy(SQL("COPY {} TO STDOUT (FORMAT BINARY)").format(live)) as copy:
            for block in copy:
                dump.write(block)
        if dump.tell() > 0:
            dump.seek(0)
            dumps[table + PHYSICAL_SUFFIX] = dump
    return dumps


def measure_physical(schema: str, events: int, batch_size: int) -> float:
    """Seconds to read every event row as the projector's batches do (id windows of
    ``batch_size``, in id order) with no decoding, then write the final read-model rows
    our catch-up ended with by ``COPY`` into fresh tables, in one transaction.

    The same bytes read and written, none of the work of getting from one to the other:
    the hardware's (and PostgreSQL's) limit for this catch-up.
    """
    select = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
        "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
    ).format(Identifier(schema, "a4c_events"))
    with psycopg.connect(CONNINFO, autocommit=True) as conn, ExitStack() as files:
        dumps = dump_final_rows(conn, schema, files)
        last = conn.execute(
            SQL("SELECT max(notification_id) FROM {}").format(Identifier(schema, "a4c_events"))
        ).fetchone()
        assert last is not None
        started = time.perf_counter()
        position, read = 0, 0
        with conn.cursor(binary=True) as cur:
            while position < last[0]:
                cur.execute(select, (position, position + batch_size, batch_size))
                read += len(cur.fetchall())
                position += batch_size
        with conn.transaction():
            for table, dump in dumps.items():
                statement = SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(
                    Identifier(schema, table)
                )
                with conn.cursor().copy(statement) as copy:
                    while block := dump.read(1 << 20):
                        copy.write(block)
        elapsed = time.perf_counter() - started
    assert read == events, (read, events)
    return elapsed


def bytes_per_event(schema: str, events: int) -> float:
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size(%s)", (f'"{schema}".a4c_events',)
        ).fetchone()
    assert row is not None
    return round(int(row[0]) / events, 1)


def measure_rebuild(env: dict[str, str]) -> dict[str, float]:
    """A full ``rebuild`` of the live projection (build, verify, swap), while a reader
    keeps querying the live read model: the rate, and the longest a read waited."""
    store = open_event_store(env)
    stalls: list[float] = []
    done = threading.Event()

    def reader() -> None:
        with psycopg.connect(CONNINFO, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{store.location.schema}"')
            n = 0
            while not done.is_set():
                began = time.perf_counter()
                conn.execute("SELECT status FROM organizations WHERE slug = %s", (f"org-{n}",))
                stalls.append(time.perf_counter() - began)
                n = (n + 7) % 1000
                time.sleep(0.01)

    thread = threading.Thread(target=reader)
    thread.start()
    started = time.perf_counter()
    try:
        report = rebuild(store.location, store.mapper)
    finally:
        done.set()
        thread.join()
    elapsed = time.perf_counter() - started
    assert report.swapped and not report.differences, report
    return {
        "rebuild_events": report.events,
        "rebuild_events_per_s": round(report.events / elapsed, 1),
        "rebuild_seconds": round(elapsed, 1),
        "rebuild_longest_read_ms": round(max(stalls) * 1000, 1),
    }


# --- each measurement in a process of its own, for its peak memory ----------------------


def _child(out: Any, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = target(*args)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        out.put((result, round(peak_mb, 1), None))
    except BaseException as exc:  # report instead of leaving the parent waiting
        out.put((None, 0.0, f"{type(exc).__name__}: {exc}"))


def in_child(target: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``target(*args)`` run in a fresh process: its result and the process's peak RSS
    (MB), which is then the projector's alone (not the seeding's)."""
    ctx = multiprocessing.get_context("spawn")
    out: Any = ctx.Queue()
    process = ctx.Process(target=_child, args=(out, target, args))
    process.start()
    result, peak_mb, error = out.get()
    process.join()
    if error:
        raise RuntimeError(f"{target.__name__} failed: {error}")
    return result, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    parser.add_argument("--rebuild-events", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    detail = parser.add_mutually_exclusive_group()
    detail.add_argument("--phases", action="store_const", const="phases", dest="detail")
    detail.add_argument("--profile", action="store_const", const="profile", dest="detail")
    args = parser.parse_args()
    with fresh_schema(CONNINFO) as schema:
        env = store_env(schema)
        app = OnboardingApplication(env)
        started = time.perf_counter()
        written = seed(app, args.rebuild_events or args.events)
        seed_seconds = time.perf_counter() - started
        app.close()
        print(f"seeded {written} events in {seed_seconds:.1f}s", file=sys.stderr)
        settle(schema)
        ours, ours_peak_mb = in_child(measure_ours, env, args.batch_size, args.detail or "")
        rate = ours["position"] / ours["seconds"]
        physical = written / measure_physical(schema, written, args.batch_size)
        base_events, base_elapsed = measure_baseline(
            env, args.baseline_events, args.baseline_seconds
        )
        baseline = base_events / base_elapsed
        figures: dict[str, Any] = {
            "events": written,
            "ours_events_per_s": round(rate, 1),
            "ours_seconds": round(ours["seconds"], 2),
            "ours_peak_rss_mb": ours_peak_mb,
            # The projector's own CPU over its wall time: near 1.0, Python is the limit.
            "ours_cpu_share": round(ours["cpu_seconds"] / ours["seconds"], 2),
            "batch_size": args.batch_size,
            "physical_events_per_s": round(physical, 1),
            "ratio_to_physical": round(rate / physical, 3),
            "baseline_events_per_s": round(baseline, 1),
            "baseline_events": base_events,
            "ratio": round(rate / baseline, 1),
            "commit_ms": commit_latency_ms(schema),
            "event_table_bytes_per_event": bytes_per_event(schema, written),
        }
        if "phases" in ours:
            figures["phases"] = ours["phases"]
        if args.rebuild_events:
            rebuilt, rebuild_peak_mb = in_child(measure_rebuild, env)
            figures.update(rebuilt, rebuild_peak_rss_mb=rebuild_peak_mb)
        emit(figures)


if __name__ == "__main__":
    main()
