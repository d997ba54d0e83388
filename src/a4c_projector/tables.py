# ruff: noqa: S608 - SQL identifiers come from code (TableSet, recorder names); values are bound
"""The read-model tables of one projection, and the DDL that creates them.

A projection owns a *table set*: ``organizations``, ``invitations``, ``applied_ranges``
and ``dead_letters``, all carrying the same ``suffix`` (empty for the live set). A
rebuild fills a set with suffix ``__rebuild`` and then swaps names in one transaction,
so readers never see a half-built model. The tracking table is shared, keyed by
projection name.

PostgreSQL DDL lives in ``sql/0NN_*.sql`` (ordered, idempotent; DBAs may run it
themselves); fresh PostgreSQL sets are cloned from the live tables with ``LIKE ...
INCLUDING ALL``. SQLite has its own equivalent DDL below (tags as a JSON array).

Where the DDL is found (:func:`find_sql_dir`): the directory configured with
``PROJECTOR_SQL_DIR`` (passed in as ``Location.sql_dir``), else ``sql/`` of the source
tree (a checkout or an editable install), else ``<prefix>/share/a4c/sql``, where a
regular install puts the same files as data files.
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from a4c_projector.db import Database
from a4c_projector.source import check_ids_drawn_in_order

TRACKING_TABLE = "projector_tracking"
REBUILD_SUFFIX = "__rebuild"
RETIRED_SUFFIX = "__retired"
SQL_DIR_VAR = "PROJECTOR_SQL_DIR"
SHARED_SQL_DIR = Path("share", "a4c", "sql")


def source_sql_dir() -> Path:
    """``sql/`` of the source tree (the DDL is kept there for DBAs as well)."""
    return Path(__file__).resolve().parents[2] / "sql"


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


@dataclass(frozen=True)
class TableSet:
    suffix: str = ""

    @property
    def organizations(self) -> str:
        return f"organizations{self.suffix}"

    @property
    def invitations(self) -> str:
        return f"invitations{self.suffix}"

    @property
    def applied(self) -> str:
        return f"applied_ranges{self.suffix}"

    @property
    def dead_letters(self) -> str:
        return f"dead_letters{self.suffix}"

    @property
    def all(self) -> tuple[str, str, str, str]:
        return (self.organizations, self.invitations, self.applied, self.dead_letters)


LIVE = TableSet()

SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS projector_tracking (
    projection TEXT PRIMARY KEY, position INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')));
CREATE TABLE IF NOT EXISTS organizations{s} (
    id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    org_type TEXT NOT NULL, parent_id TEXT, tags TEXT NOT NULL DEFAULT '[]', domain TEXT,
    status TEXT NOT NULL, dns_status TEXT NOT NULL, fqdn TEXT, dns_target TEXT,
    dns_record_id TEXT, deactivation_reason TEXT, failed_step TEXT,
    registered_at TEXT NOT NULL, dns_configured_at TEXT, dns_verified_at TEXT,
    dns_removed_at TEXT, activated_at TEXT, deactivated_at TEXT, modified_at TEXT NOT NULL,
    version INTEGER NOT NULL, last_event_id TEXT NOT NULL, last_position INTEGER NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')));
CREATE INDEX IF NOT EXISTS organizations{s}_status_idx ON organizations{s} (status);
CREATE TABLE IF NOT EXISTS invitations{s} (
    id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, email TEXT NOT NULL,
    role TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
    generation INTEGER NOT NULL, token_generation INTEGER NOT NULL,
    token_hash TEXT NOT NULL, expires_at TEXT NOT NULL, status TEXT NOT NULL,
    email_status TEXT NOT NULL, message_id TEXT, email_error TEXT, accepted_by TEXT,
    revoke_reason TEXT, invited_at TEXT NOT NULL, email_sent_at TEXT,
    email_failed_at TEXT, token_reissued_at TEXT, accepted_at TEXT, revoked_at TEXT,
    expired_at TEXT, modified_at TEXT NOT NULL, version INTEGER NOT NULL,
    last_event_id TEXT NOT NULL, last_position INTEGER NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')));
CREATE INDEX IF NOT EXISTS invitations{s}_org_status_idx
    ON invitations{s} (organization_id, status);
CREATE INDEX IF NOT EXISTS invitations{s}_token_hash_idx ON invitations{s} (token_hash);
CREATE TABLE IF NOT EXISTS applied_ranges{s} (
    first_id INTEGER PRIMARY KEY, last_id INTEGER NOT NULL CHECK (last_id >= first_id));
CREATE INDEX IF NOT EXISTS applied_ranges{s}_last_id_idx ON applied_ranges{s} (last_id);
CREATE TABLE IF NOT EXISTS dead_letters{s} (
    notification_id INTEGER PRIMARY KEY, originator_id TEXT NOT NULL,
    originator_version INTEGER NOT NULL, topic TEXT NOT NULL, error TEXT NOT NULL,
    parked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')));
CREATE INDEX IF NOT EXISTS dead_letters{s}_originator_idx
    ON dead_letters{s} (originator_id, originator_version);
"""


def sql_files(sql_dir: Path | None = None) -> list[Path]:
    """The read-model DDL files in order (``001_event_store.sql`` is the DBA's, not ours)."""
    return _ddl_in(find_sql_dir(sql_dir))


def ensure_schema(db: Database, tables: TableSet = LIVE, sql_dir: Path | None = None) -> None:
    """Create the live tables (idempotent) and, for a suffixed set, fresh empty ones."""
    with db.transaction():
        if db.dialect == "sqlite":
            for statement in SQLITE_DDL.format(s="").split(";"):
                if statement.strip():
                    db.execute(statement)
            _fold_legacy_applied_log(db)
            if tables.suffix:
                for statement in SQLITE_DDL.format(s=tables.suffix).split(";"):
                    if statement.strip() and TRACKING_TABLE not in statement:
                        db.execute(statement)
            return
        # Concurrent replicas may start together: serialise DDL on a transaction lock.
        # Its key names the schema: ``CREATE INDEX IF NOT EXISTS`` waits for every open
        # write on the table, and with one key for the whole database a single busy
        # store would hold up the start of every projector of every other store.
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"a4c_projector_ddl:{db.location.schema}",),
        )
        for path in sql_files(sql_dir or db.location.sql_dir):
            db.execute(path.read_text())
        _fold_legacy_applied_log(db)
        check_ids_drawn_in_order(db)  # the store must be safe to tail before any batch
        if tables.suffix:
            for live, fresh in zip(LIVE.all, tables.all, strict=True):
                db.execute(f'CREATE TABLE IF NOT EXISTS "{fresh}" (LIKE "{live}" INCLUDING ALL)')


# The applied log before 0.2: one row per event. Folded into runs of consecutive ids
# when the schema is ensured, on either database.
FOLD_LEGACY_APPLIED_LOG = """
INSERT INTO applied_ranges (first_id, last_id)
SELECT min(notification_id), max(notification_id)
FROM (SELECT notification_id,
             notification_id - row_number() OVER (ORDER BY notification_id) AS run
      FROM applied_events) AS numbered
GROUP BY run
"""


def _fold_legacy_applied_log(db: Database) -> None:
    legacy = (
        "SELECT 1 WHERE to_regclass('applied_events') IS NOT NULL"
        if db.dialect == "postgres"
        else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'applied_events'"
    )
    if db.execute(legacy):
        db.execute(FOLD_LEGACY_APPLIED_LOG)
        db.execute("DROP TABLE applied_events")
    for leftover in (REBUILD_SUFFIX, RETIRED_SUFFIX):  # of an interrupted rebuild
        db.execute(f'DROP TABLE IF EXISTS "applied_events{leftover}"')


def drop_tables(db: Database, tables: TableSet) -> None:
    assert tables.suffix, "refusing to drop the live tables"
    with db.transaction():
        for name in tables.all:
            db.execute(f'DROP TABLE IF EXISTS "{name}"')


def replace_tables(db: Database, live: TableSet, fresh: TableSet) -> None:
    """Put ``fresh`` in place of ``live`` (call inside a transaction that locks ``live``).

    Indexes keep their *live* names: PostgreSQL renames a table but not its indexes, and
    ``LIKE ... INCLUDING ALL`` named the fresh ones after the fresh table. Were they left
    so, the next start's ``CREATE INDEX IF NOT EXISTS organizations_status_idx`` would
    add a duplicate of every index, and each rebuild another. So each fresh index takes
    the name of the live index with the same definition; SQLite, which cannot rename
    an index, gets its indexes dropped and created again under the live names.
    """
    for live_name, fresh_name in zip(live.all, fresh.all, strict=True):
        if db.dialect == "postgres":
            names = _index_names_by_definition(db, live_name)
            db.execute(f'DROP TABLE "{live_name}"')
            db.execute(f'ALTER TABLE "{fresh_name}" RENAME TO "{live_name}"')
            for key, fresh_indexes in _index_names_by_definition(db, live_name).items():
                for old, new in zip(fresh_indexes, names.get(key, []), strict=False):
                    if old != new:
                        db.execute(f'ALTER INDEX "{old}" RENAME TO "{new}"')
        else:
            db.execute(f'DROP TABLE "{live_name}"')
            db.execute(f'ALTER TABLE "{fresh_name}" RENAME TO "{live_name}"')
            for (index,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                "AND sql IS NOT NULL",
                (live_name,),
            ):
                db.execute(f'DROP INDEX "{index}"')
    if db.dialect == "sqlite":
        for statement in SQLITE_DDL.format(s=live.suffix).split(";"):
            if statement.strip():
                db.execute(statement)


def _index_names_by_definition(db: Database, table: str) -> dict[tuple[bool, str], list[str]]:
    """Index names of ``table`` keyed by (unique, method and columns), e.g. ``btree (status)``."""
    rows = db.execute(
        "SELECT i.relname, x.indisunique, "
        "regexp_replace(pg_get_indexdef(x.indexrelid), '^.*? USING ', '') "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid "
        "WHERE t.oid = to_regclass(%s) ORDER BY i.relname",
        (f'"{table}"',),
    )
    names: dict[tuple[bool, str], list[str]] = {}
    for name, unique, definition in rows:
        names.setdefault((bool(unique), str(definition)), []).append(str(name))
    return names


def index_names(db: Database, tables: TableSet = LIVE) -> dict[str, list[str]]:
    """The indexes of each table of a set, by name (what an operator would see)."""
    result: dict[str, list[str]] = {}
    for table in tables.all:
        if db.dialect == "postgres":
            rows = db.execute(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = to_regclass(%s) ORDER BY 1",
                (f'"{table}"',),
            )
        else:
            rows = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                "ORDER BY name",
                (table,),
            )
        result[table] = [str(r[0]) for r in rows]
    return result


ORGANIZATION_COLUMNS = (
    "id", "slug", "name", "org_type", "parent_id", "tags", "domain", "status", "dns_status",
    "fqdn", "dns_target", "dns_record_id", "deactivation_reason", "failed_step",
    "registered_at", "dns_configured_at", "dns_verified_at", "dns_removed_at",
    "activated_at", "deactivated_at", "modified_at", "version", "last_event_id",
    "last_position",
)  # fmt: skip
INVITATION_COLUMNS = (
    "id", "organization_id", "email", "role", "first_name", "last_name", "generation",
    "token_generation", "token_hash", "expires_at", "status", "email_status", "message_id",
    "email_error", "accepted_by", "revoke_reason", "invited_at", "email_sent_at",
    "email_failed_at", "token_reissued_at", "accepted_at", "revoked_at", "expired_at",
    "modified_at", "version", "last_event_id", "last_position",
)  # fmt: skip
# Everything but ``updated_at`` (wall-clock time of the write): what two builds of the
# same events must agree on.
COMPARED_COLUMNS = {"organizations": ORGANIZATION_COLUMNS, "invitations": INVITATION_COLUMNS}


def snapshot_rows(db: Database, tables: TableSet) -> dict[str, dict[str, tuple[object, ...]]]:
    """Every read-model row by table and id, without ``updated_at`` (for comparisons)."""
    result: dict[str, dict[str, tuple[object, ...]]] = {}
    for kind, columns in COMPARED_COLUMNS.items():
        table = getattr(tables, kind)
        rows = db.execute(f'SELECT {", ".join(columns)} FROM "{table}" ORDER BY id')
        result[kind] = {str(r[0]): tuple(_normal(v) for v in r) for r in rows}
    return result


def _normal(value: object) -> object:
    """One representation per value across dialects (SQLite keeps text)."""
    import json
    from datetime import datetime
    from uuid import UUID

    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return json.dumps(value)
    return value
