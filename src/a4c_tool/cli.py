"""``a4c``: the developer's and operator's entry point (the tool's console script).

* ``a4c dev`` — the whole stack locally on embedded defaults, the API included (see
  :mod:`a4c_tool.stack`); ``a4c dev --postgres`` the same on the local PostgreSQL, in a
  database of its own (:mod:`a4c_tool.devstore`) and a data folder of its own.
* ``a4c demo`` — the domain scenario on a SQLite file, no servers.
* ``a4c entities list|cleanup --tag TAG`` — tagged (development/seed) entities.
* ``a4c validate`` — check configuration and every dependency, one line each.
* ``a4c webhooks create|list|show|update|disable|enable|delete|rotate-secret`` — webhook
  endpoints, through the ``/v1`` API (:mod:`a4c_tool.webhooks`; the key in ``A4C_API_KEY``).

Without configuration in the environment, ``a4c`` works on the local stack's data
folder (``--data-dir``, default ``.a4c``), in development; set ``PERSISTENCE_MODULE``/
``POSTGRES_*``, ``A4C_TOKEN_SECRET`` and the worker's variables to point it at a
deployment, which is production unless ``WORKFLOW_MODE`` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from eventsourcing.persistence import PersistenceError

from a4c_domain.application import TOKEN_SECRET_VAR
from a4c_domain.errors import ConfigurationError, StoreUnreachable
from a4c_service.cli import INTERRUPTED, command_line, subcommands
from a4c_tool.datafolder import DataFolderInUse, StoreMismatch, store_identity
from a4c_tool.devstore import DEV_DATABASE, DevDatabaseUnavailable
from a4c_tool.processes import ChildFailed, PortInUse
from a4c_worker.config import DEFAULT_API_URL
from a4c_worker.exit import run_and_exit

DEFAULT_DATA_DIR = ".a4c"
# ``a4c dev --postgres``'s own folder: a data folder's Temporal state belongs to one event
# store (datafolder.py), so the two stacks run one after the other without --data-dir.
POSTGRES_DATA_DIR = ".a4c-postgres"
DATA_DIR_VAR = "A4C_DATA_DIR"


def default_data_dir(*, postgres: bool = False) -> Path:
    """``A4C_DATA_DIR``, else the embedded stack's folder or ``--postgres``'s."""
    fallback = POSTGRES_DATA_DIR if postgres else DEFAULT_DATA_DIR
    return Path(os.environ.get(DATA_DIR_VAR) or fallback)


def local_token_secret(data_dir: Path) -> str:
    """The dev stack's token key: from A4C_TOKEN_SECRET, else generated once and kept."""
    configured = os.environ.get(TOKEN_SECRET_VAR)
    if configured:
        return configured
    path = data_dir / "token-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def effective_environ(data_dir: Path) -> dict[str, str]:
    """The local stack's store, key and worker mode, overridden by whatever the environment
    sets. Development only on the data folder's own store: pointed at another one, ``a4c``
    works on a deployment, in production (the worker's default) unless WORKFLOW_MODE says."""
    from a4c_tool.stackconfig import DEV_WORKFLOW_MODE, own_store, store_env

    environ = store_env(data_dir, local_token_secret(data_dir)) | dict(os.environ)
    if store_identity(environ) == store_identity(own_store(data_dir)):
        return DEV_WORKFLOW_MODE | environ
    return environ


EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
EXIT_CODES = (
    (EXIT_OK, "success"),
    (
        EXIT_FAILED,
        "a child process, a check, the sample bootstrap, a cleanup step or the store failed; "
        "the API refused a webhooks request or did not answer",
    ),
    (EXIT_INVALID, "bad configuration or usage; the data folder is in use or another store's"),
    (INTERRUPTED, "interrupted (Ctrl-C) before the stack was running"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = command_line(
        "a4c",
        "The a4c tool: the local stack, the demo, tagged entities, validate and webhook endpoints.",
        EXIT_CODES,
        epilog="Without configuration in the environment, a4c works on the local stack's data\n"
        "folder, in development; set PERSISTENCE_MODULE/POSTGRES_*, A4C_TOKEN_SECRET and\n"
        "the worker's variables to point it at a deployment (production unless\n"
        "WORKFLOW_MODE says otherwise).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,  # resolved in main: --postgres has a folder of its own
        help=f"folder for the local stack's files (default: {DATA_DIR_VAR}, else "
        f"{DEFAULT_DATA_DIR}, or {POSTGRES_DATA_DIR} with dev --postgres)",
    )
    # Also accepted after the subcommand (``a4c dev --data-dir X``); SUPPRESS keeps a
    # value given before it when none is given after.
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="folder for the local stack's files (default: as given before the command)",
    )
    sub_parser = subcommands(parser, "command", parents=[data_dir])
    dev = sub_parser("dev", help="run the whole stack locally until Ctrl-C")
    dev.add_argument("--once", action="store_true", help="stop after the sample bootstrap")
    dev.add_argument(
        "--temporal-port", type=int, default=7233, help="Temporal's port, if free (else any)"
    )
    dev.add_argument(
        "--ui-port", type=int, default=8233, help="the Temporal Web UI's port, if free (else any)"
    )
    dev.add_argument(
        "--postgres",
        action="store_true",
        help=f"keep the event store and read models in the local PostgreSQL, database "
        f"{DEV_DATABASE} (created if missing; POSTGRES_* override), not the SQLite file",
    )
    dev.add_argument(
        "--api-port",
        type=int,
        default=urlsplit(DEFAULT_API_URL).port,
        help="the API's port, where the invitation links of this run point; refused if taken",
    )
    sub_parser("demo", help="run the domain scenario on SQLite, no servers")
    entities = sub_parser("entities", help="list or clean up tagged entities")
    entity_parser = subcommands(entities, "action")
    listing = entity_parser("list", help="organizations and invitations with a tag")
    listing.add_argument("--tag", required=True, help="the tag to look for (required)")
    listing.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format"
    )
    clean = entity_parser("cleanup", help="revoke, remove DNS, deactivate (dry run)")
    clean.add_argument("--tag", required=True, help="the tag to clean up (required)")
    clean.add_argument("--execute", action="store_true", help="really do it (else a dry run)")
    sub_parser("validate", help="check configuration and every dependency")
    from a4c_tool.webhooks import add_parser as add_webhooks

    add_webhooks(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    postgres = args.command == "dev" and args.postgres
    data_dir: Path = args.data_dir or default_data_dir(postgres=postgres)
    try:
        if args.command == "dev":
            from a4c_tool.stack import run_stack

            return run_stack(
                data_dir,
                local_token_secret(data_dir),
                sys.stdout,
                once=args.once,
                temporal_port=args.temporal_port,
                ui_port=args.ui_port,
                api_port=args.api_port,
                postgres=postgres,
            )
        if args.command == "demo":
            from a4c_tool.demo import run_demo

            run_demo(data_dir, local_token_secret(data_dir), sys.stdout)
            return 0
        if args.command == "entities":
            return _entities(args, effective_environ(data_dir))
        if args.command == "webhooks":
            from a4c_tool.webhooks import run as run_webhooks

            return run_webhooks(args)
        if args.command == "validate":
            from a4c_tool.validate import main_validate

            return main_validate(effective_environ(data_dir))
    except (DataFolderInUse, StoreMismatch, PortInUse) as exc:
        print(f"a4c dev: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StoreUnreachable as exc:  # before ConfigurationError: a server down, not a typo
        print(f"a4c {args.command}: the event store cannot be opened: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (ChildFailed, DevDatabaseUnavailable) as exc:
        print(f"a4c dev: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except PersistenceError as exc:  # the store is down or cannot be created there
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"a4c {args.command}: the event store cannot be opened: {reason}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the data folder: a file, not writable, ...
        print(f"a4c {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_INVALID


def entry_point() -> NoReturn:
    """The ``a4c`` console script."""
    run_and_exit(main)


def _entities(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from a4c_tool.entities import cleanup, find_tagged, render
    from a4c_worker.config import load_settings
    from a4c_worker.wiring import build_application, build_dns

    settings = load_settings(environ)
    app = build_application(settings)
    try:
        if args.action == "list":
            print(render(find_tagged(app, args.tag), args.format))
            return 0
        dns, _ = build_dns(settings)
        report = asyncio.run(cleanup(app, dns, args.tag, dry_run=not args.execute))
    finally:
        app.close()
    for line in report.actions:
        print(line)
    for line in report.failures:
        print(f"FAILED: {line}", file=sys.stderr)
    if report.dry_run:
        print("(dry run: nothing was changed; add --execute to do it)")
    return 1 if report.failures else 0


if __name__ == "__main__":
    entry_point()
