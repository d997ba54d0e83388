# ruff: noqa: S608 - SQL identifiers come from code (TableSet, recorder names); values are bound
"""Turning a batch of row changes into few statements: fold, group, ``executemany``.

Changes are folded per row first (consecutive events of one aggregate become one
change carrying the last version), then grouped by the shape of the statement they need,
so a batch of thousands of events costs a handful of ``executemany`` calls. Every
statement is guarded by ``version < new version``: applying a change a row already has
(a replay) changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from a4c_projector.db import Database
from a4c_projector.handlers import RowChange
from a4c_projector.tables import TRACKING_TABLE, TableSet

BOOKKEEPING = ("version", "last_event_id", "last_position", "modified_at", "updated_at")


class TrackingConflict(Exception):
    """Another runner moved this projection's position: this runner is not the owner."""


def fold(changes: Iterable[RowChange]) -> list[RowChange]:
    """One change per row, in first-seen order."""
    folded: dict[UUID, RowChange] = {}
    for change in changes:
        previous = folded.get(change.id)
        folded[change.id] = change if previous is None else previous.then(change)
    return list(folded.values())


def _insert_statement(table: str, columns: Sequence[str]) -> str:
    names = ["id", *columns, *BOOKKEEPING]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
    return (
        f'INSERT INTO "{table}" AS t ({", ".join(names)}) '
        f"VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE t.version < excluded.version"
    )


def _update_statement(table: str, columns: Sequence[str]) -> str:
    sets = ", ".join(f"{n} = %s" for n in (*columns, *BOOKKEEPING))
    return f'UPDATE "{table}" SET {sets} WHERE id = %s AND version < %s'


def write_changes(db: Database, tables: TableSet, changes: Iterable[RowChange]) -> None:
    now = datetime.now(UTC)
    groups: dict[tuple[str, bool, tuple[str, ...]], list[list[Any]]] = defaultdict(list)
    for change in fold(changes):
        columns = tuple(sorted(change.columns))
        bookkeeping = [change.version, change.event_id, change.position, change.modified_at, now]
        values = [change.columns[c] for c in columns]
        if change.creates:
            params = [change.id, *values, *bookkeeping]
        else:
            params = [*values, *bookkeeping, change.id, change.version]
        groups[(change.table, change.creates, columns)].append(params)
    for (table, creates, columns), rows in groups.items():
        name = getattr(tables, table)
        statement = (
            _insert_statement(name, columns) if creates else _update_statement(name, columns)
        )
        db.executemany(statement, rows)


def record_applied(db: Database, tables: TableSet, applied: Sequence[tuple[int, UUID]]) -> None:
    db.executemany(
        f'INSERT INTO "{tables.applied}" (notification_id, event_id) VALUES (%s, %s) '
        "ON CONFLICT (notification_id) DO NOTHING",
        applied,
    )


def record_parked(
    db: Database, tables: TableSet, parked: Sequence[tuple[int, UUID, int, str, str]]
) -> None:
    db.executemany(
        f'INSERT INTO "{tables.dead_letters}" '
        "(notification_id, originator_id, originator_version, topic, error) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (notification_id) DO NOTHING",
        parked,
    )


def ensure_tracking(db: Database, projection: str) -> None:
    db.execute(
        f"INSERT INTO {TRACKING_TABLE} (projection, position) VALUES (%s, 0) "
        "ON CONFLICT (projection) DO NOTHING",
        (projection,),
    )


def read_position(db: Database, projection: str) -> int:
    rows = db.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE projection = %s", (projection,))
    return int(rows[0][0]) if rows else 0


def advance_position(db: Database, projection: str, old: int, new: int) -> None:
    """Move the position; fails if it is no longer ``old`` (someone else is writing)."""
    rows = db.execute(
        f"UPDATE {TRACKING_TABLE} SET position = %s, updated_at = %s "
        "WHERE projection = %s AND position = %s RETURNING position",
        (new, datetime.now(UTC), projection, old),
    )
    if not rows:
        raise TrackingConflict(
            f"projection {projection!r} moved away from position {old}: another runner is active"
        )
