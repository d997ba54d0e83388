"""``a4c``: the developer's entry point.

``a4c demo`` runs the domain scenario on the embedded SQLite store (no servers).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from a4c_worker.demo import run_demo

DEFAULT_DATA_DIR = ".a4c"


def local_token_secret(data_dir: Path) -> str:
    """The dev stack's token key: from A4C_TOKEN_SECRET, else generated once and kept."""
    configured = os.environ.get("A4C_TOKEN_SECRET")
    if configured:
        return configured
    path = data_dir / "token-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="a4c", description=__doc__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("A4C_DATA_DIR", DEFAULT_DATA_DIR)),
        help="folder for the local stack's files (default: %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the domain scenario on SQLite, no servers")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir
    if args.command == "demo":
        run_demo(data_dir, local_token_secret(data_dir), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
