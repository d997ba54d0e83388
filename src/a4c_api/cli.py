"""``a4c-api``: serve the front door, make an API key, or check the configuration.

    a4c-api run                                  # serve (the default command)
    a4c-api new-key --name ci --operator         # prints the key once, and its API_KEYS entry
    a4c-api new-key --name acme-sync --organization 6f1c...-uuid
    a4c-api validate-config

Configuration comes from the environment only (:mod:`a4c_api.settings`), read here and
nowhere else. ``run`` serves the front door on ``API_PORT`` and ``/metrics`` on a
listener of its own, ``API_METRICS_PORT``. SIGTERM (or Ctrl-C) stops accepting
connections, lets the requests in flight finish for up to
``API_SHUTDOWN_GRACE_SECONDS``, then exits.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn
from uuid import UUID

import uvicorn
from starlette.types import ASGIApp

from a4c_api.app import create_app
from a4c_api.observability import serve_metrics
from a4c_api.settings import API_KEY_PREFIX, ApiKeyGrant, ApiSettings, api_key_hash, load_settings
from a4c_domain.errors import ConfigurationError
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.settings import store_env
from a4c_service.cli import INTERRUPTED, command_line, subcommands
from a4c_service.logs import configure_logging
from a4c_service.probes import CannotListen
from a4c_worker.exit import run_and_exit

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
EXIT_CODES = (
    (EXIT_OK, "success (a served process stopped cleanly)"),
    (EXIT_FAILED, "the server failed"),
    (EXIT_INVALID, "bad configuration or bad usage"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = command_line(
        "a4c-api", "a4c's HTTP front door: invitee pages and the /v1 API.", EXIT_CODES
    )
    command = subcommands(parser, "command", required=False)  # none: run
    command("run", help="serve (the default)")
    key = command("new-key", help="make an API key: printed once, only its hash is configured")
    key.add_argument("--name", required=True, help="what the key is for (its API_KEYS name)")
    grant = key.add_mutually_exclusive_group(required=True)
    grant.add_argument("--operator", action="store_true", help="acts on any organization")
    grant.add_argument(
        "--organization", type=UUID, metavar="UUID", help="acts on this organization only"
    )
    command("validate-config", help="check the configuration and print it, secrets masked")
    return parser


def new_key(name: str, organization_id: UUID | None) -> tuple[str, ApiKeyGrant]:
    """A fresh key and the grant that admits it (holding only the key's hash)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    grant = ApiKeyGrant(name=name, sha256=api_key_hash(key), organization_id=organization_id)
    return key, grant


def server_config(app: ASGIApp, settings: ApiSettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # a4c's own JSON lines (configure_logging), not uvicorn's
        proxy_headers=True,
        forwarded_allow_ips=list(settings.api_forwarded_allow_ips),  # none: the peer is the client
        timeout_graceful_shutdown=int(settings.api_shutdown_grace_seconds),
        server_header=False,
        # Each connection may buffer a body of API_MAX_BODY_BYTES: bound how many at once.
        limit_concurrency=settings.api_max_connections,
    )


def serve(settings: ApiSettings) -> int:
    if settings.production:
        settings.warn_if_payloads_in_clear(logger)
    store = open_event_store(store_env(os.environ))
    app = create_app(settings, store.location)
    server = uvicorn.Server(server_config(app, settings))
    try:
        metrics = serve_metrics(
            app.state.metrics, settings.api_metrics_host, settings.api_metrics_port
        )
    except CannotListen as exc:
        print(f"a4c-api: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the
    # handler it found; the default one would end the process by the signal (-15), not
    # with the exit code of a clean stop. So the handler it finds does nothing.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    finally:
        metrics.shutdown()
        metrics.server_close()
    return EXIT_OK if server.started else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "new-key":
        key, grant = new_key(args.name, args.organization)
        print(f"API key (shown once; keep it secret): {key}")
        print(f"add to API_KEYS (comma-separated): {grant.entry()}")
        return EXIT_OK
    try:
        settings = load_settings(os.environ)
    except ConfigurationError as exc:
        print(f"a4c-api: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.command == "validate-config":
        print(json.dumps(settings.masked(), indent=2, sort_keys=True, default=str))
        return EXIT_OK
    configure_logging(settings.log_level, json_lines=settings.log_format == "json")
    try:
        return serve(settings)
    except ConfigurationError as exc:
        print(f"a4c-api: configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID


def entry_point() -> NoReturn:
    run_and_exit(main)
