"""``a4c-webhooks``: run (the delivery daemon), streams, retry, replay.

Configuration is read here and nowhere else (see :mod:`a4c_webhooks.settings`); the
database is the event store's (``POSTGRES_*``). Exit codes: 0 success, 1 nothing to do
(no parked stream to retry, an unknown endpoint), 2 bad configuration or usage,
including a database that cannot be reached.

Positions (``replay --after``/``--until``) are the events feed's: the notification ids
``GET /v1/events`` pages by, given as a number or as that API's cursor (its ``next``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NoReturn
from uuid import UUID

from a4c_domain.errors import ConfigurationError
from a4c_domain.feed_cursor import decode_cursor
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.queries import ReadModel
from a4c_projector.settings import store_env
from a4c_service.cli import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PROBLEM,
    FROM_ENVIRONMENT,
    command_line,
    daemon_exit_codes,
    subcommands,
)
from a4c_service.logs import configure_logging
from a4c_service.probes import CannotListen
from a4c_service.settings import SettingsError
from a4c_service.tabular import render_text
from a4c_webhooks import store
from a4c_webhooks.daemon import Daemon, DaemonOptions
from a4c_webhooks.disable import TemporalDisabler
from a4c_webhooks.http import Probes, serve
from a4c_webhooks.settings import WebhookSettings, load_settings
from a4c_worker.client import connect as connect_temporal
from a4c_worker.exit import run_and_exit

log = logging.getLogger("a4c_webhooks")

EXIT_NOTHING = EXIT_PROBLEM
EXIT_CODES = daemon_exit_codes("nothing done: no parked stream to retry, or an unknown endpoint")
STREAM_COLUMNS = (
    "state",
    "endpoint",
    "name",
    "organization",
    "since",
    "pending",
    "head",
    "attempts",
    "last",
)


def parser() -> argparse.ArgumentParser:
    p = command_line(
        "a4c-webhooks",
        "Delivers public events to webhook endpoints (Standard Webhooks), and manages them.",
        EXIT_CODES,
        epilog=FROM_ENVIRONMENT,
    )
    command = subcommands(p, "command")
    command("run", help="the daemon: fan out public events and deliver them")
    streams = command("streams", help="parked and failing streams (endpoint, organization)")
    streams.add_argument(
        "--format", choices=["table", "json", "csv"], default="table", help="output format"
    )
    retry = command("retry", help="unpark an endpoint's streams: their heads are sent again")
    retry.add_argument("--endpoint", type=UUID, required=True, help="the endpoint's id (required)")
    retry.add_argument(
        "--organization",
        type=UUID,
        default=None,
        help="only this organization's stream (default: every one of the endpoint's)",
    )
    replay = command("replay", help="send an endpoint a range of events again, same ids")
    replay.add_argument("--endpoint", type=UUID, required=True, help="the endpoint's id (required)")
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument(
        "--after",
        type=_position,
        help="from the event after this position (a feed position, or an events API "
        "cursor); this or --since (required)",
    )
    start.add_argument(
        "--since",
        type=_time,
        help="from the first event that occurred at or after this time (ISO); this or "
        "--after (required)",
    )
    replay.add_argument(
        "--until",
        type=_bound,
        default=None,
        help="up to this position (or cursor), or before this time (ISO) (default: everything)",
    )
    return p


def _position(text: str) -> int:
    """A feed position, as a number or as the events API's cursor (an answer's ``next``)."""
    if not text.isdigit() and not text.startswith("-"):
        try:
            return decode_cursor(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a position nor an events cursor: {text!r}"
            ) from None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a position: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a position is 0 or more, not {value}")
    return value


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give the UTC offset, e.g. 2026-12-07T08:00:00Z")
    return value


def _bound(text: str) -> int | datetime:
    return _position(text) if text.isdigit() or _is_cursor(text) else _time(text)


def _is_cursor(text: str) -> bool:
    try:
        decode_cursor(text)
    except ValueError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
        # Files read now, not at the first disable; only the daemon starts workflows.
        problems = settings.problems() if args.command == "run" else settings.temporal_problems()
        if problems:
            raise SettingsError(problems)
        configure_logging(settings.log_level, json_lines=settings.log_format == "json")
        location = open_event_store(store_env(os.environ)).location
        if location.dialect != "postgres":
            raise ConfigurationError(
                "PERSISTENCE_MODULE: a4c-webhooks needs PostgreSQL (eventsourcing.postgres)"
            )
        with connect(location, purpose="startup") as db:
            store.ensure_tables(db)
            missing = store.missing_read_models(db)
        if missing and args.command != "run":  # the daemon waits for them
            raise ConfigurationError(
                f"no {', '.join(missing)} in POSTGRES_SCHEMA={location.schema}: "
                "start a4c-projector first (it creates the read models)"
            )
    except (ConfigurationError, FileNotFoundError) as exc:
        print(f"a4c-webhooks: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        if args.command == "run":
            return _run(settings, location)
        if args.command == "streams":
            return _streams(args, location)
        if args.command == "retry":
            return _retry(args, location)
        return _replay(args, location)
    except CannotListen as exc:
        print(f"a4c-webhooks: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID


def _run(settings: WebhookSettings, location: Location) -> int:
    daemon = Daemon(
        location,
        settings.secret_keys,
        settings.outbound_policy,
        DaemonOptions(
            schedule=settings.webhook_retry_schedule,
            disable_after=settings.webhook_disable_after,
            concurrency=settings.webhook_concurrency,
            poll_interval=settings.webhook_poll_interval,
            shutdown_grace=settings.webhook_shutdown_grace,
            max_in_flight_per_owner=settings.webhook_max_in_flight_per_owner,
        ),
        TemporalDisabler(
            functools.partial(connect_temporal, settings.temporal_connection()),
            settings.temporal_task_queue,
        ),
        admin_emails=_AdminEmails(location),
    )
    probes = Probes(
        daemon,
        heartbeat_max_age=max(5.0, 4 * settings.webhook_poll_interval),
        ready_max_lag=settings.webhook_ready_max_lag,
    )
    server = serve(probes, settings.webhook_http_host, settings.webhook_http_port)
    log.info("probes on http://%s:%s", settings.webhook_http_host, server.server_address[1])

    async def main_loop() -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stopper(daemon, signum))
        return await daemon.run()

    try:
        return asyncio.run(main_loop())
    finally:
        server.shutdown()
        probes.close()


class _AdminEmails:
    """Whom to tell when an organization's endpoint is disabled: its admins."""

    def __init__(self, location: Location) -> None:
        self.location = location

    def __call__(self, organization_id: UUID) -> list[str]:
        with ReadModel(self.location) as read_model:
            return read_model.organization_admin_emails(organization_id)


def _stopper(daemon: Daemon, signum: int) -> Callable[[], None]:
    def stop() -> None:
        log.info("signal %s: finishing the deliveries in flight", signum)
        daemon.stop()

    return stop


def _streams(args: argparse.Namespace, location: Location) -> int:
    with connect(location, purpose="cli") as db:
        streams = store.troubled_streams(db)
    if args.format == "json":
        print(
            json.dumps(
                [
                    {
                        "state": s.state,
                        "endpoint_id": str(s.endpoint_id),
                        "endpoint_name": s.endpoint_name,
                        "organization_id": str(s.organization_id),
                        "failing_since": _iso(s.failing_since),
                        "parked_at": _iso(s.parked_at),
                        "parked_reason": s.parked_reason,
                        "pending": s.pending,
                        "head_position": s.head_position,
                        "head_attempts": s.head_attempts,
                        "last_status": s.last_status,
                        "last_error": s.last_error,
                    }
                    for s in streams
                ]
            )
        )
        return EXIT_OK
    rows = [
        [
            s.state,
            str(s.endpoint_id),
            s.endpoint_name or "",
            str(s.organization_id),
            _iso(s.parked_at or s.failing_since) or "",
            str(s.pending),
            "" if s.head_position is None else str(s.head_position),
            "" if s.head_attempts is None else str(s.head_attempts),
            s.last_error or "",
        ]
        for s in streams
    ]
    print(render_text(STREAM_COLUMNS, rows, args.format))
    return EXIT_OK


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _retry(args: argparse.Namespace, location: Location) -> int:
    with connect(location, purpose="cli") as db:
        count = store.unpark(db, args.endpoint, args.organization)
    print(f"unparked {count} stream{'s' if count != 1 else ''}")
    return EXIT_OK if count else EXIT_NOTHING


def _replay(args: argparse.Namespace, location: Location) -> int:
    with connect(location, purpose="cli") as db:
        if not store.endpoint_exists(db, args.endpoint):
            print(f"a4c-webhooks: no endpoint {args.endpoint}", file=sys.stderr)
            return EXIT_NOTHING
        after = args.after
        if after is None:
            after = store.position_at(db, args.since, start=True)
        until = args.until
        if isinstance(until, datetime):
            until = store.position_at(db, until, start=False)
        count = store.replay(db, args.endpoint, after, until)
    print(f"queued {count} deliver{'ies' if count != 1 else 'y'} again")
    return EXIT_OK


def entry_point() -> NoReturn:
    """The ``a4c-webhooks`` console script."""
    run_and_exit(main)


__all__ = ["entry_point", "main", "parser"]
