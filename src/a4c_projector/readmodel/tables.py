"""A projection's table set, and creating, upgrading, swapping and dropping it.

A projection owns a *table set*: ``organizations``, ``invitations``, ``members``,
``invitation_tokens``, ``public_events``, ``webhook_endpoints``, ``sso_connections``,
``email_domains``, ``applied_ranges`` and ``dead_letters``
(:data:`a4c_projector.schema.PER_SET`), all carrying the same ``suffix`` (empty for the
live set). A rebuild fills a set with suffix ``__rebuild`` and then swaps names in one
transaction, so readers never see a half-built model. The tracking table is shared,
keyed by projection name.

How each dialect creates the tables is its own (:meth:`Database.create_tables
<a4c_projector.dialects.base.Database.create_tables>`): PostgreSQL runs ``sql/``,
SQLite the DDL derived from :mod:`a4c_projector.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from a4c_projector.dialects.base import Database
from a4c_projector.eventlog.source import check_ids_drawn_in_order
from a4c_projector.schema import PER_SET

REBUILD_SUFFIX = "__rebuild"
RETIRED_SUFFIX = "__retired"


@dataclass(frozen=True)
class TableSet:
    suffix: str = ""

    def name(self, table: str) -> str:
        """The name in this set of the live table ``table``."""
        return f"{table}{self.suffix}"

    @property
    def organizations(self) -> str:
        return self.name("organizations")

    @property
    def invitations(self) -> str:
        return self.name("invitations")

    @property
    def members(self) -> str:
        return self.name("members")

    @property
    def invitation_tokens(self) -> str:
        return self.name("invitation_tokens")

    @property
    def public_events(self) -> str:
        return self.name("public_events")

    @property
    def webhook_endpoints(self) -> str:
        return self.name("webhook_endpoints")

    @property
    def sso_connections(self) -> str:
        return self.name("sso_connections")

    @property
    def email_domains(self) -> str:
        return self.name("email_domains")

    @property
    def applied(self) -> str:
        return self.name("applied_ranges")

    @property
    def dead_letters(self) -> str:
        return self.name("dead_letters")

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(self.name(t.name) for t in PER_SET)


LIVE = TableSet()


def ensure_schema(db: Database, tables: TableSet = LIVE, sql_dir: Path | None = None) -> None:
    """Create the live tables (idempotent) and, for a suffixed set, fresh empty ones.

    The caller then derives the members a projection from before the members table (0.2)
    lacks (:func:`a4c_projector.readmodel.members.backfill_members`).
    """
    with db.transaction():
        db.create_tables(sql_dir, tables.suffix)
        _fold_legacy_applied_log(db)
        check_ids_drawn_in_order(db)  # the store must be safe to tail before any batch


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
    if db.table_exists("applied_events"):
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
    """Put ``fresh`` in place of ``live`` (call inside a transaction that locks ``live``);
    indexes keep their live names."""
    for table in PER_SET:
        db.replace_table(table, live.name(table.name), fresh.name(table.name))


def index_names(db: Database, tables: TableSet = LIVE) -> dict[str, list[str]]:
    """The indexes of each table of a set, by name (what an operator would see)."""
    return {table: db.index_names(table) for table in tables.all}
