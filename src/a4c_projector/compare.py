# ruff: noqa: S608 - SQL identifiers come from code (TableSet, column tuples)
"""Which read-model rows differ between two table sets, computed by the database.

Set differences (``EXCEPT``, which treats two NULLs as equal) over every compared
column, in both directions; only the ids of differing rows travel back. Nothing is
locked beyond what a plain ``SELECT`` takes, so run inside a snapshot
(:meth:`a4c_projector.db.Database.snapshot`) readers and the live runner go on
meanwhile, and both sides are seen at one moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from a4c_projector.db import Database
from a4c_projector.tables import COMPARED_COLUMNS, TableSet


def differing_rows(
    db: Database, live: TableSet, fresh: TableSet, ids: Sequence[UUID] | None = None
) -> list[str]:
    """``"<table kind> <id>"`` for each row missing from one set or different in it;
    only the rows of ``ids`` when given (by primary key: cheap however big the tables)."""
    if ids is not None and not ids:
        return []
    differences: list[str] = []
    where = ""
    params: tuple[object, ...] = ()
    if ids is not None:  # one parameter however many ids (a statement takes 65,535 at most)
        wanted: list[UUID] | list[str]
        if db.dialect == "postgres":
            where, wanted = " WHERE id = ANY(%s)", list(ids)
        else:  # a list is passed to SQLite as a JSON array
            where, wanted = " WHERE id IN (SELECT value FROM json_each(%s))", [str(i) for i in ids]
        params = (wanted,) * 4
    for kind, columns in COMPARED_COLUMNS.items():
        old, new = f'"{getattr(live, kind)}"{where}', f'"{getattr(fresh, kind)}"{where}'
        selected = ", ".join(columns)
        rows = db.execute(
            f"{_only_in(old, new, selected)} UNION {_only_in(new, old, selected)}", params
        )
        differences.extend(f"{kind} {row[0]}" for row in sorted(rows, key=lambda r: str(r[0])))
    return differences


def _only_in(table: str, other: str, columns: str) -> str:
    """The ids of rows of ``table`` with no identical row in ``other``."""
    return f"SELECT id FROM (SELECT {columns} FROM {table} EXCEPT SELECT {columns} FROM {other}) d"


def touched_between(db: Database, after: int, upto: int) -> list[UUID]:
    """The aggregates with an event in ``(after, upto]``: the rows those events wrote."""
    events = db.location.qualified_events_table
    column = "notification_id" if db.dialect == "postgres" else "rowid"
    rows = db.execute(
        f"SELECT DISTINCT originator_id FROM {events} WHERE {column} > %s AND {column} <= %s",
        (after, upto),
    )
    return [UUID(str(r[0])) for r in rows]
