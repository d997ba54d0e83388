# ruff: noqa: S608 - SQL identifiers come from code (TableSet, recorder names); values are bound
"""Turning a batch of row changes into few statements: fold, group, stage or ``executemany``.

Changes are folded per row first (consecutive events of one aggregate become one
change carrying the last version), then grouped by the shape of the statement they need.
A large group on PostgreSQL is streamed with ``COPY`` into a stage and applied with one
set-based statement (:mod:`a4c_projector.readmodel.staging`); a small one is one ``executemany``.
Either way a batch of thousands of events costs a handful of statements, and every
statement is guarded by ``version < new version``: applying a change a row already has
(a replay) changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any
from uuid import UUID

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.readmodel.handlers import RowChange
from a4c_projector.readmodel.members import write_members
from a4c_projector.readmodel.public_events import write_public_events
from a4c_projector.readmodel.staging import (
    copy_rows,
    ensure_stage,
    update_from_stage,
    upsert_from_stage,
)
from a4c_projector.readmodel.tables import TableSet
from a4c_projector.readmodel.tokens import write_tokens

BOOKKEEPING = ("version", "last_event_id", "last_position", "modified_at", "updated_at")
# Rows of one shape from which a stage (COPY + one statement) beats ``executemany``.
COPY_THRESHOLD = 64


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
        f"INSERT INTO {table} AS t ({', '.join(names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE t.version < excluded.version"
    )


def _update_statement(table: str, columns: Sequence[str]) -> str:
    sets = ", ".join(f"{n} = %s" for n in (*columns, *BOOKKEEPING))
    return f"UPDATE {table} SET {sets} WHERE id = %s AND version < %s"


def change_statement(table: str, change: RowChange, now: datetime) -> tuple[str, list[Any]]:
    """The version-guarded statement for one change; ``table`` a quoted SQL identifier.

    For callers that write one change at a time (the one-event-per-transaction baseline
    of ``bench/projector_catchup.py``): the same SQL the batched path runs per row.
    """
    columns = tuple(sorted(change.columns))
    row = _row(change, columns, now)
    if change.creates:
        return _insert_statement(table, columns), row
    return _update_statement(table, columns), _update_params(row, len(columns))


@dataclass(frozen=True)
class Shape:
    """Rows that take the same statement: one table, create or update, same columns."""

    table: str  # "organizations" | "invitations"
    creates: bool
    columns: tuple[str, ...]


def _row(change: RowChange, columns: tuple[str, ...], now: datetime) -> list[Any]:
    """``[id, *column values, *BOOKKEEPING]``: the order of ``Shape.all_columns``."""
    values = change.columns
    return [
        change.id,
        *[values[c] for c in columns],
        change.version,
        change.event_id,
        change.position,
        change.modified_at,
        now,
    ]


def _update_params(row: list[Any], width: int) -> list[Any]:
    """A ``_row`` reordered for ``_update_statement``: values, bookkeeping, id, version."""
    return [*row[1:], row[0], row[1 + width]]


def group_changes(changes: Iterable[RowChange], now: datetime) -> dict[Shape, list[list[Any]]]:
    """Folded changes grouped by statement shape, as rows in ``_row`` order."""
    groups: dict[Shape, list[list[Any]]] = defaultdict(list)
    for change in fold(changes):
        columns = tuple(sorted(change.columns))
        groups[Shape(change.table, change.creates, columns)].append(_row(change, columns, now))
    return groups


def write_changes(
    db: Database,
    tables: TableSet,
    changes: Iterable[RowChange],
    *,
    copy_threshold: int = COPY_THRESHOLD,
) -> None:
    """Apply ``changes`` with version guards: few statements, however many rows.

    On PostgreSQL a group of at least ``copy_threshold`` rows goes through a stage
    (:mod:`a4c_projector.readmodel.staging`); smaller ones (live batches) are one ``executemany``.
    """
    now = datetime.now(UTC)
    stages: dict[str, str] = {}
    changes = list(changes)
    for group, (shape, rows) in enumerate(group_changes(changes, now).items()):
        name = getattr(tables, shape.table)
        if isinstance(db, PostgresDatabase) and len(rows) >= copy_threshold:
            if name not in stages:
                stages[name] = ensure_stage(db.conn, name)
            columns = ("id", *shape.columns, *BOOKKEEPING)
            copy_rows(db.conn, stages[name], group, columns, rows)
            build = upsert_from_stage if shape.creates else update_from_stage
            db.execute(build(name, stages[name], columns), (group,))
        elif shape.creates:
            db.executemany(_insert_statement(f'"{name}"', shape.columns), rows)
        else:
            width = len(shape.columns)
            db.executemany(
                _update_statement(f'"{name}"', shape.columns),
                [_update_params(row, width) for row in rows],
            )
    # After the invitations: their member rows are derived from what was just written.
    write_members(db, tables, list({c.id: None for c in changes if c.table == "invitations"}))
    # Unfolded: every token a change issued, not only each invitation's last.
    write_tokens(db, tables, changes, copy_threshold)
    # Unfolded too: one row per public event (after the rows it may look organizations up in).
    write_public_events(db, tables, changes, copy_threshold)


def runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending ids as runs of consecutive ids: ``[1, 2, 3, 7]`` → ``[(1, 3), (7, 7)]``."""
    found = []
    for _, run in groupby(enumerate(ids), key=lambda pair: pair[1] - pair[0]):
        members = [nid for _, nid in run]
        found.append((members[0], members[-1]))
    return found


def record_applied(db: Database, tables: TableSet, notification_ids: Sequence[int]) -> None:
    """Log a batch's applied ids (ascending) as runs of consecutive ids.

    A run never bridges a missing id: an id the batch did not apply (a gap, or an event
    parked) ends the run, so an event committing late below the position shows up in the
    audit. A run that continues the log's previous run (``first - 1`` is where it ends:
    the usual case, batch after batch) extends it instead, so the log stays a few rows
    however many events and batches; one statement per run either way. Extending only
    ever grows a run (``last_id < excluded.last_id``): replaying a batch adds nothing.
    """
    table = f'"{tables.applied}"'
    db.executemany(
        f"INSERT INTO {table} AS t (first_id, last_id) "
        f"SELECT coalesce((SELECT min(first_id) FROM {table} WHERE last_id = %s), %s), %s "
        "WHERE true "  # SQLite: without a WHERE, ``ON`` would be read as a join condition
        "ON CONFLICT (first_id) DO UPDATE SET last_id = excluded.last_id "
        "WHERE t.last_id < excluded.last_id",
        [(first - 1, first, last) for first, last in runs(notification_ids)],
    )


@contextmanager
def one_round_trip(db: Database, events: int) -> Iterator[None]:
    """Send a small batch's writes together (psycopg pipeline mode), then wait once.

    A live batch of a few events otherwise pays one round trip per statement group,
    which is most of its latency. Batches of ``COPY_THRESHOLD`` events or more may use
    ``COPY`` (not allowed in a pipeline) and are dominated by their rows anyway. A read
    inside (``Database.execute``) waits for its rows, a round trip of its own: writes go
    through ``executemany``, and what must be read after is sent with ``execute_later``.
    """
    if events < COPY_THRESHOLD:
        with db.pipeline():
            yield
    else:
        yield
