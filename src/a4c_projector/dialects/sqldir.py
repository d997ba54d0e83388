"""Where the PostgreSQL read-model DDL (``sql/0NN_*.sql``) is found.

The directory configured with ``PROJECTOR_SQL_DIR`` (passed in as ``Location.sql_dir``),
else ``sql/`` of the source tree (a checkout or an editable install), else
``<prefix>/share/a4c/sql``, where a regular install puts the same files as data files.
The files are ordered and idempotent; DBAs may run them themselves.
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

SQL_DIR_VAR = "PROJECTOR_SQL_DIR"
SHARED_SQL_DIR = Path("share", "a4c", "sql")


def source_sql_dir() -> Path:
    """``sql/`` of the source tree (the DDL is kept there for DBAs as well)."""
    return Path(__file__).resolve().parents[3] / "sql"


def installed_sql_dirs() -> list[Path]:
    """Where ``pip install`` puts the data files: the environment's prefix, the user's."""
    roots = [
        sys.prefix,
        sysconfig.get_path("data"),
        sysconfig.get_path("data", sysconfig.get_preferred_scheme("user")),
        sys.base_prefix,
    ]
    return list(dict.fromkeys(Path(root) / SHARED_SQL_DIR for root in roots if root))


def find_sql_dir(
    configured: Path | None = None,
    *,
    source: Path | None = None,
    installed: Iterable[Path] | None = None,
) -> Path:
    """The first directory holding the read-model DDL, in the documented order.

    A configured directory is taken or refused, never skipped: a typo in
    ``PROJECTOR_SQL_DIR`` must not silently pick other DDL.
    """
    if configured is not None:
        if not _ddl_in(configured):
            raise FileNotFoundError(
                f"{SQL_DIR_VAR}={configured}: no read-model DDL (010_*.sql ...) there"
            )
        return configured
    candidates = [source or source_sql_dir(), *(installed or installed_sql_dirs())]
    for candidate in candidates:
        if _ddl_in(candidate):
            return candidate
    raise FileNotFoundError(
        "no read-model DDL (010_*.sql ...) found; looked in "
        + ", ".join(str(c) for c in candidates)
        + f"; set {SQL_DIR_VAR}"
    )


def _ddl_in(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.glob("0*.sql") if p.name[:3].isdigit() and int(p.name[:3]) >= 10
    )


def sql_files(sql_dir: Path | None = None) -> list[Path]:
    """The read-model DDL files in order (``001_event_store.sql`` is the DBA's, not ours)."""
    return _ddl_in(find_sql_dir(sql_dir))
