"""``a4c-projector``: run, status, rebuild, audit, dead-letter list|retry, show.

Configuration is read here and nowhere else (see :mod:`a4c_projector.settings`). Exit
codes: 0 success, 1 the operation found a problem (poison event, audit gap, rebuild
mismatch, failed retry), 2 bad configuration or usage, including a database that
cannot be reached (one line naming the variable to fix).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any
from uuid import UUID

from a4c_domain.errors import ConfigurationError
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import PoisonEvent
from a4c_projector.engine.runner import Runner, RunnerOptions
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.http import Probes, serve
from a4c_projector.maintenance.audit import audit
from a4c_projector.maintenance.lag import measure
from a4c_projector.maintenance.rebuild import RebuildMismatch, SwapLockUnavailable, rebuild
from a4c_projector.maintenance.show import (
    KINDS,
    ShowFilter,
    UnknownOrganization,
    collect,
    fields_of,
    render,
)
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel.deadletters import list_parked, retry_parked
from a4c_projector.readmodel.members import backfill_members
from a4c_projector.readmodel.tables import LIVE, ensure_schema
from a4c_projector.settings import (
    DEFAULT_BATCH_SIZE,
    ProjectorSettings,
    load_settings,
    store_env,
)
from a4c_service.cli import (
    EXIT_INVALID,
    FROM_ENVIRONMENT,
    INTERRUPTED,
    command_line,
    daemon_exit_codes,
    subcommands,
)
from a4c_service.logs import configure_logging
from a4c_service.probes import CannotListen

log = logging.getLogger("a4c_projector")


EXIT_CODES = daemon_exit_codes(
    "a problem was found: poison event, audit gap, rebuild mismatch, failed retry"
)


def parser() -> argparse.ArgumentParser:
    p = command_line(
        "a4c-projector",
        "Keeps a4c's read models current from the event store, and maintains them.",
        EXIT_CODES,
        epilog=FROM_ENVIRONMENT,
    )
    command = subcommands(p, "command")
    run = command("run", help="the daemon: catch up, then follow the event store")
    run.add_argument("--dead-letter", action="store_true", help="park poison events and go on")
    command("status", help="position, head and lag (JSON)")
    rb = command("rebuild", help="rebuild into fresh tables, verify, swap")
    rb.add_argument("--force", action="store_true", help="swap even if rows differ")
    rb.add_argument("--no-progress", action="store_true", help="no progress bar")
    rb.add_argument(
        "--batch-size",
        type=_positive,
        default=None,
        help=f"events per batch (default: {DEFAULT_BATCH_SIZE} or more)",
    )
    command("audit", help="list committed events up to the position not applied")
    dl = command("dead-letter", help="parked events")
    dl_command = subcommands(dl, "action")
    dl_command("list", help="the parked events (JSON)")
    retry = dl_command("retry", help="apply parked events again")
    retry.add_argument("--aggregate", type=UUID, default=None, help="only this aggregate's")
    show = command("show", help="print a read model (no token hashes)")
    show.add_argument("what", choices=KINDS)
    show.add_argument("--tag", help="organizations with this tag (or their invitations)")
    show.add_argument("--status", help="organizations or invitations in this status")
    show.add_argument("--org", metavar="SLUG", help="one organization (or its invitations)")
    show.add_argument(
        "--format", choices=["table", "json", "csv"], default="table", help="output format"
    )
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _print(data: Any) -> None:
    print(json.dumps(data, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
        configure_logging(settings.log_level, json_lines=settings.log_format == "json")
        store = open_event_store(store_env(os.environ), sql_dir=settings.sql_dir)
        with connect(store.location) as db:
            ensure_schema(db)
            with db.transaction():
                backfill_members(db, LIVE)
    except (ConfigurationError, FileNotFoundError) as exc:
        print(f"a4c-projector: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    command = {
        "run": _run,
        "status": _status,
        "rebuild": _rebuild,
        "audit": _audit,
        "dead-letter": _dead_letter,
        "show": _show,
    }[args.command]
    try:
        return command(args, settings, store)
    except CannotListen as exc:  # the probes' port: another replica on this host has it
        print(f"a4c-projector: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:  # a rebuild or an audit stopped by hand: no traceback
        print("a4c-projector: interrupted", file=sys.stderr)
        return INTERRUPTED


def _run(args: argparse.Namespace, settings: ProjectorSettings, store: EventStore) -> int:
    runner = Runner(
        store,
        RunnerOptions(
            projection=settings.projection,
            batch_size=settings.batch_size,
            poll_interval=settings.poll_interval,
            gap_grace=settings.gap_grace,
            dead_letter=settings.dead_letter or args.dead_letter,
        ),
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current batch", signum)
        runner.stop()

    # The loop runs on its own thread; the main thread only joins it and takes signals.
    # A handler that sets the loop's threading.Event while the main thread itself is
    # inside that Event's wait() can deadlock on the Event's lock (seen: a SIGTERM'd
    # SQLite daemon that never exited), so the two must not share a thread.
    outcome: list[int] = []

    def loop() -> None:
        try:
            outcome.append(runner.run())
        except Exception:
            log.exception("the projector loop failed")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    probes = Probes(runner, settings.ready_max_age, settings.heartbeat_limit)
    server = serve(probes, settings.http_host, settings.http_port)
    log.info("probes on http://%s:%s", settings.http_host, server.server_address[1])
    thread = threading.Thread(target=loop, name="projector-loop")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        server.shutdown()
        probes.close()
    return outcome[0] if outcome else 1


def _status(args: argparse.Namespace, settings: ProjectorSettings, store: EventStore) -> int:
    with connect(store.location) as db, db.transaction():
        _print(
            {
                "projection": settings.projection,
                **measure(db, store.mapper, settings.projection).as_dict(),
            }
        )
    return 0


def _rebuild(args: argparse.Namespace, settings: ProjectorSettings, store: EventStore) -> int:
    from tqdm import tqdm

    bar = tqdm(total=0, unit="ev", disable=args.no_progress, file=sys.stderr)

    def progress(position: int, head: int) -> None:
        bar.total = head
        bar.n = position
        bar.refresh()

    try:
        report = rebuild(
            store.location,
            store.mapper,
            projection=settings.projection,
            batch_size=args.batch_size or max(settings.batch_size, DEFAULT_BATCH_SIZE),
            dead_letter=settings.dead_letter,
            force=args.force,
            progress=progress,
        )
    except RebuildMismatch as exc:
        bar.close()
        _print({"swapped": False, "differences": exc.differences})
        return 1
    except (SwapLockUnavailable, PoisonEvent) as exc:
        bar.close()
        _print({"swapped": False, "error": str(exc)})
        return 1
    bar.close()
    warning = report.warning(settings.projection)
    if warning is not None:
        print(f"a4c-projector rebuild: {warning}", file=sys.stderr)
    _print(
        {
            "swapped": report.swapped,
            "position": report.position,
            "head": report.head,
            "behind": report.behind,
            "events": report.events,
            "differences": report.differences,
            **({"warning": warning} if warning is not None else {}),
        }
    )
    return 0


def _audit(args: argparse.Namespace, settings: ProjectorSettings, store: EventStore) -> int:
    with connect(store.location) as db:
        report = audit(db, settings.projection)
    _print(
        {
            "position": report.position,
            "checked": report.checked,
            "applied": report.applied,
            "parked": report.parked,
            "complete": report.complete,
            "missing": [vars(m) for m in report.missing],
        }
    )
    return 0 if report.complete else 1


def _dead_letter(args: argparse.Namespace, settings: ProjectorSettings, store: EventStore) -> int:
    with connect(store.location, purpose="dead-letter") as db:
        if args.action == "list":
            _print([vars(p) for p in list_parked(db)])
            return 0
        outcomes = retry_parked(
            db, store.mapper, originator_id=args.aggregate, projection=settings.projection
        )
    _print([vars(o) for o in outcomes])
    return 0 if all(o.error is None for o in outcomes) else 1


def _show(args: argparse.Namespace, settings: ProjectorSettings, store: EventStore) -> int:
    where = ShowFilter(tag=args.tag, status=args.status, org=args.org)
    with ReadModel(store.location, projection=settings.projection) as reads:
        try:
            rows = collect(reads, args.what, where)
        except UnknownOrganization as exc:
            print(f"a4c-projector: {exc}", file=sys.stderr)
            return 1
    print(render(rows, fields_of(args.what), args.format))
    return 0
