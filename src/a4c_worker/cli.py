"""``a4c-worker``: run the Temporal worker, or start and steer onboarding workflows.

Configuration comes from the environment only (see :mod:`a4c_worker.config`), read
here and nowhere else. The exit codes are :data:`EXIT_CODES` (listed by ``--help``);
bad configuration is reported as ``configuration error: VAR: problem`` lines on stderr.

The operator commands (bootstrap, status, cancel, invite, revoke) stay with the worker:
they steer its workflows with its own configuration and client, and ship in its image;
the ``a4c`` tool (``a4c_tool``) is what drives both daemons.

    a4c-worker run
    a4c-worker bootstrap --slug acme --name "Acme" --invitee ada@example.com,admin,Ada,Lovelace
    a4c-worker bootstrap --file acme.json --no-follow
    a4c-worker status acme
    a4c-worker cancel acme --reason "customer withdrew"
    a4c-worker invite --org-slug acme --email grace@example.com --role member \\
        --first-name Grace --last-name Hopper
    a4c-worker revoke 6f1c...-uuid --reason "left the company"
    a4c-worker validate-config
    a4c-worker claim-domains --dry-run   # once after upgrading to 0.3.0 (CHANGELOG)
    a4c-worker new-payload-key k2        # an entry for TEMPORAL_PAYLOAD_KEYS
    a4c-worker codec-server              # lets the Temporal Web UI open sealed payloads
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO
from uuid import UUID

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError
from temporalio.service import RPCError

from a4c_domain.commands import field_errors
from a4c_domain.errors import A4CError, InvalidCommand, StoreUnreachable
from a4c_service.cli import INTERRUPTED, command_line, subcommands
from a4c_service.logs import configure_logging
from a4c_service.probes import CannotListen
from a4c_worker import control
from a4c_worker.claim_domains import claim_domains
from a4c_worker.client import connect
from a4c_worker.codec import PayloadKeys
from a4c_worker.codec_server import CodecServerSettings, serve
from a4c_worker.config import Scope, SettingsError, WorkerSettings, load_settings
from a4c_worker.connection import connect_failure
from a4c_worker.exit import run_and_exit
from a4c_worker.runner import run_worker
from a4c_worker.wiring import build_application
from a4c_worker.workflows.models import BootstrapInput

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_FAILED, "the workflow or the request failed"),
    (EXIT_INVALID, "bad configuration, bad input or bad usage"),
    (EXIT_UNREACHABLE, "Temporal or the event store could not be reached"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)


class Unreachable(Exception):
    """Temporal did not answer the connection."""


# What each command needs from the configuration (client commands need only Temporal).
SCOPES: dict[str, Scope] = {
    "run": "worker",
    "validate-config": "worker",
    "invite": "store",
    "claim-domains": "store",
    "bootstrap": "client",
    "status": "client",
    "cancel": "client",
    "revoke": "client",
}


# Bootstrap options override the --file's fields; unset, the file (or the input) decides.
FROM_FILE = "(default: from --file, else the input's)"


def build_parser() -> argparse.ArgumentParser:
    parser = command_line(
        "a4c-worker",
        "Temporal worker and operator commands for a4c onboarding.",
        EXIT_CODES,
        epilog="Configuration is read from environment variables; see validate-config.",
    )
    command = subcommands(parser, "command")
    command("run", help="run the worker with /health, /ready and /metrics")
    command("validate-config", help="check and print the configuration, secrets masked")

    boot = command("bootstrap", help="start an organization bootstrap and follow it")
    boot.add_argument("--file", type=Path, help="JSON file with the bootstrap input")
    boot.add_argument("--name", help=f"organization name {FROM_FILE}")
    boot.add_argument("--slug", help=f"organization slug (one bootstrap per slug) {FROM_FILE}")
    boot.add_argument(
        "--org-type",
        choices=["provider", "partner"],
        help="organization type (default: from --file, else provider)",
    )
    boot.add_argument("--parent-id", help=f"the parent organization's id {FROM_FILE}")
    boot.add_argument("--domain", help=f"organization host name; omit for no DNS steps {FROM_FILE}")
    boot.add_argument("--tag", action="append", dest="tags", help=f"a tag; repeatable {FROM_FILE}")
    boot.add_argument(
        "--invitee",
        action="append",
        dest="invitees",
        metavar="EMAIL,ROLE,FIRST,LAST",
        help=f"someone to invite; repeatable {FROM_FILE}",
    )
    for option, what in (
        ("propagation-wait-seconds", "wait for DNS to propagate"),
        ("dns-verify-initial-interval-seconds", "first pause between DNS checks"),
        ("invitation-ttl-seconds", "how long the invitations stay valid"),
        ("reminder-before-seconds", "send the reminder this long before expiry"),
    ):
        boot.add_argument(f"--{option}", type=float, help=f"{what} {FROM_FILE}")
    boot.add_argument(
        "--dns-verify-attempts",
        type=int,
        help=f"DNS checks before giving up {FROM_FILE}",
    )
    boot.add_argument("--no-follow", action="store_true", help="start and return at once")

    status = command("status", help="print a bootstrap's progress")
    status.add_argument("slug", help="the organization's slug")

    cancel = command("cancel", help="cancel a running bootstrap (it compensates)")
    cancel.add_argument("slug", help="the organization's slug")
    cancel.add_argument("--reason", default="cancelled by operator", help="why, recorded")
    cancel.add_argument(
        "--no-wait", action="store_true", help="send the signal, do not wait for compensation"
    )

    invite = command("invite", help="invite someone to an existing organization")
    invite.add_argument("--org-slug", required=True, help="the organization's slug (required)")
    invite.add_argument("--email", required=True, help="the invitee's address (required)")
    invite.add_argument("--role", required=True, help="the invitee's role (required)")
    invite.add_argument("--first-name", required=True, help="the invitee's first name (required)")
    invite.add_argument("--last-name", required=True, help="the invitee's last name (required)")
    invite.add_argument("--generation", type=int, default=1, help="re-invite after a revoke")

    revoke = command("revoke", help="revoke a pending invitation")
    revoke.add_argument("invitation_id", type=UUID, help="the invitation's id")
    revoke.add_argument("--reason", required=True, help="why, recorded (required)")

    claim = command(
        "claim-domains",
        help="claim the domains organizations took before 0.3.0, oldest first (run once)",
    )
    claim.add_argument("--dry-run", action="store_true", help="report, write nothing")

    new_key = command(
        "new-payload-key",
        help="print a new key as a TEMPORAL_PAYLOAD_KEYS entry (id:base64key); put it first",
    )
    new_key.add_argument("key_id", help="the key's id, e.g. k2 or 2026-12")
    command(
        "codec-server",
        help="serve /decode and /encode for the Temporal Web UI (CODEC_SERVER_* variables)",
    )
    return parser


def bootstrap_input(args: argparse.Namespace) -> BootstrapInput:
    """The file's fields (if any), overridden by options given on the command line."""
    data: dict[str, Any] = {}
    if args.file is not None:
        data = _read_json_object(args.file)
    for key in ("name", "slug", "org_type", "parent_id", "domain", "tags"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    if args.invitees is not None:
        data["invitees"] = [_invitee(item) for item in args.invitees]
    for key in (
        "propagation_wait_seconds",
        "dns_verify_attempts",
        "dns_verify_initial_interval_seconds",
        "invitation_ttl_seconds",
        "reminder_before_seconds",
    ):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    data.setdefault("org_type", "provider")
    return BootstrapInput.model_validate(data)


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidCommand("bootstrap", [{"field": "--file", "message": str(exc)}]) from None
    if not isinstance(data, dict):
        raise InvalidCommand("bootstrap", [{"field": "--file", "message": "not a JSON object"}])
    return data


def _invitee(item: str) -> dict[str, str]:
    parts = [part.strip() for part in item.split(",")]
    if len(parts) != 4:
        raise InvalidCommand(
            "bootstrap",
            [{"field": "--invitee", "message": f"{item!r}: expected EMAIL,ROLE,FIRST,LAST"}],
        )
    email, role, first_name, last_name = parts
    return {"email": email, "role": role, "first_name": first_name, "last_name": last_name}


async def dispatch(args: argparse.Namespace, settings: WorkerSettings, out: TextIO) -> int:
    if args.command == "run":
        return await run_worker(settings)
    if args.command == "claim-domains":  # the event store only; no Temporal
        try:
            summary = await asyncio.to_thread(claim_domains, settings, out, dry_run=args.dry_run)
        except PersistenceError as exc:
            raise Unreachable(f"the event store failed: {exc}") from None
        return EXIT_OK if summary.settled else EXIT_FAILED
    spec = bootstrap_input(args) if args.command == "bootstrap" else None
    temporal = settings.temporal_connection()
    try:
        client = await connect(temporal)
    except RuntimeError as exc:  # the SDK's "Failed client connect"
        raise Unreachable(connect_failure(temporal, exc)) from None
    queue = settings.temporal_task_queue
    if spec is not None:
        return await control.bootstrap(client, spec, queue, out, follow=not args.no_follow)
    if args.command == "status":
        return await control.status(client, args.slug, out)
    if args.command == "cancel":
        return await control.cancel(client, args.slug, args.reason, out, wait=not args.no_wait)
    if args.command == "revoke":
        return await control.revoke(client, args.invitation_id, args.reason, out)
    assert args.command == "invite"
    app = await asyncio.to_thread(build_application, settings)
    try:
        return await control.invite(
            client,
            app,
            queue,
            out,
            org_slug=args.org_slug,
            email=args.email,
            role=args.role,
            first_name=args.first_name,
            last_name=args.last_name,
            generation=args.generation,
        )
    finally:
        app.close()


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    if args.command == "new-payload-key":  # needs no configuration
        try:
            print(PayloadKeys.generate(args.key_id).entry(), file=out)
        except ValueError as exc:
            print(f"invalid input: key_id: {exc}", file=err)
            return EXIT_INVALID
        return EXIT_OK
    if args.command == "codec-server":  # its own settings: none of the worker's
        return codec_server(os.environ if environ is None else environ, err)
    try:
        settings = load_settings(os.environ if environ is None else environ, SCOPES[args.command])
    except SettingsError as exc:
        for variable, problem in exc.problems:
            print(f"configuration error: {variable}: {problem}", file=err)
        return EXIT_INVALID
    configure_logging(settings.log_level, json_lines=settings.log_format == "json")
    if args.command == "validate-config":
        control.show(settings.masked(), out)
        return EXIT_OK
    try:
        return asyncio.run(dispatch(args, settings, out))
    except (ValidationError, InvalidCommand) as exc:
        problems = field_errors(exc) if isinstance(exc, ValidationError) else exc.errors
        for item in problems:
            print(f"invalid input: {item['field']}: {item['message']}", file=err)
        return EXIT_INVALID
    except control.CommandFailed as exc:
        print(str(exc), file=err)
        return EXIT_FAILED
    except StoreUnreachable as exc:
        print(str(exc), file=err)
        return EXIT_UNREACHABLE
    except CannotListen as exc:  # the health port: another worker on this host has it
        print(f"configuration error: {exc}", file=err)
        return EXIT_INVALID
    except A4CError as exc:
        print(f"{type(exc).__name__}: {exc}", file=err)
        return EXIT_FAILED
    except Unreachable as exc:
        print(str(exc), file=err)
        return EXIT_UNREACHABLE
    except RPCError as exc:
        print(f"Temporal refused the request: {exc.status.name}: {exc.message}", file=err)
        return EXIT_FAILED


def codec_server(environ: Mapping[str, str], err: TextIO) -> int:
    try:
        settings = CodecServerSettings.load(environ)
    except SettingsError as exc:
        for variable, problem in exc.problems:
            print(f"configuration error: {variable}: {problem}", file=err)
        return EXIT_INVALID
    configure_logging(settings.log_level, json_lines=settings.log_format == "json")
    return EXIT_OK if serve(settings) else EXIT_FAILED


def entry_point() -> NoReturn:
    """The ``a4c-worker`` console script."""
    run_and_exit(main)


if __name__ == "__main__":
    entry_point()
