# ruff: noqa: S608 - SQL identifiers come from code (TableSet, column tuples)
"""Which read-model rows differ between two table sets, computed by the database.

Set differences (``EXCEPT``, which treats two NULLs as equal) over every compared
column, in both directions; only the ids of differing rows travel back. Nothing is
locked beyond what a plain ``SELECT`` takes, so run inside a snapshot
(:meth:`a4c_projector.dialects.base.Database.snapshot`) readers and the live runner go on
meanwhile, and both sides are seen at one moment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from a4c_projector.dialects.base import Database
from a4c_projector.readmodel.tables import TableSet
from a4c_projector.schema import READ_MODELS, compared_columns

# Every column but ``updated_at``, by table: what two builds of the same events must
# agree on. The first is the table's key (a member's is its invitation's id).
COMPARED_COLUMNS = {table.name: compared_columns(table) for table in READ_MODELS}
KEYS = {table.name: table.primary_key for table in READ_MODELS}
assert all(columns[0] == KEYS[kind] for kind, columns in COMPARED_COLUMNS.items())
# The id of the aggregate that wrote a row: what ``ids`` select and what a difference
# names (a token row's is its invitation's: a token hash is never reported).
AGGREGATES = {table.name: table.aggregate_key for table in READ_MODELS}


def differing_rows(
    db: Database, live: TableSet, fresh: TableSet, ids: Sequence[UUID] | None = None
) -> list[str]:
    """``"<table kind> <id>"`` for each row missing from one set or different in it (the
    id of the aggregate that wrote it, once per table); only the rows of the aggregates
    ``ids`` when given (by an indexed column: cheap however big the tables)."""
    if ids is not None and not ids:
        return []
    differences: list[str] = []
    for kind, columns in COMPARED_COLUMNS.items():
        where = ""
        params: tuple[object, ...] = ()
        if ids is not None:  # one parameter however many ids (a statement takes 65,535 at most)
            condition, wanted = db.in_list(AGGREGATES[kind], ids)
            where, params = f" WHERE {condition}", (wanted,) * 4
        old, new = f'"{live.name(kind)}"{where}', f'"{fresh.name(kind)}"{where}'
        selected = ", ".join(columns)
        rows = db.execute(
            f"{_only_in(old, new, selected, AGGREGATES[kind])} UNION "
            f"{_only_in(new, old, selected, AGGREGATES[kind])}",
            params,
        )
        differences.extend(f"{kind} {row[0]}" for row in sorted(rows, key=lambda r: str(r[0])))
    return differences


def _only_in(table: str, other: str, columns: str, key: str) -> str:
    """The ``key`` of rows of ``table`` with no identical row in ``other``."""
    differing = f"SELECT {columns} FROM {table} EXCEPT SELECT {columns} FROM {other}"
    return f"SELECT {key} FROM ({differing}) d"


def touched_between(db: Database, after: int, upto: int) -> list[UUID]:
    """The aggregates with an event in ``(after, upto]``: the rows those events wrote."""
    events = db.location.qualified_events_table
    column = db.id_column
    rows = db.execute(
        f"SELECT DISTINCT originator_id FROM {events} WHERE {column} > %s AND {column} <= %s",
        (after, upto),
    )
    return [UUID(str(r[0])) for r in rows]


def snapshot_rows(db: Database, tables: TableSet) -> dict[str, dict[str, tuple[object, ...]]]:
    """Every read-model row by table and id, without ``updated_at`` (for comparisons)."""
    result: dict[str, dict[str, tuple[object, ...]]] = {}
    for kind, columns in COMPARED_COLUMNS.items():
        rows = db.execute(
            f'SELECT {", ".join(columns)} FROM "{tables.name(kind)}" ORDER BY {KEYS[kind]}'
        )
        result[kind] = {str(r[0]): tuple(_normal(v) for v in r) for r in rows}
    return result


def _normal(value: object) -> object:
    """One representation per value across dialects (SQLite keeps text)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return json.dumps(value)
    return value
