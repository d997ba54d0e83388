# ruff: noqa: S608 - SQL identifiers come from code (TableSet names); values go through COPY
"""Big batches on PostgreSQL: ``COPY`` rows into a temp table, then one set-based statement.

Thousands of single-row upserts cost thousands of statement executions on the server,
even pipelined. For a large group of rows of the same shape the writer instead streams
them with ``COPY`` into a *stage* (a session-local temp table shaped like the target, with
a ``grp`` column telling groups apart) and applies them with one ``INSERT ... SELECT ...
ON CONFLICT`` or ``UPDATE ... FROM``. The version guards are the same as in the
row-at-a-time statements, so the result is identical and a replay is still a no-op.

The stage is ``ON COMMIT DELETE ROWS``: it is empty at the start of every transaction,
and a rolled-back batch leaves nothing behind. It is created once per connection
(``CREATE TEMP TABLE IF NOT EXISTS`` as part of each staged write, so a reconnect needs
no bookkeeping) without the target's constraints, since a group fills only its columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

STAGE_PREFIX = "a4c_stage_"


def stage_name(table: str) -> str:
    return f"{STAGE_PREFIX}{table}"


def ensure_stage(conn: psycopg.Connection[Any], table: str) -> str:
    """The stage of ``table`` on this connection (created on first use)."""
    stage = stage_name(table)
    conn.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" ON COMMIT DELETE ROWS AS '
        f'SELECT 0 AS grp, * FROM "{table}" WITH NO DATA'.encode()
    )
    return stage


def copy_rows(
    conn: psycopg.Connection[Any],
    stage: str,
    group: int,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Stream ``rows`` (values for ``columns``) into the stage, tagged with ``group``.

    Binary ``COPY`` (three times faster to format than text): the column types are read
    from the stage itself, so they always match the table the stage was cloned from.
    """
    names = f"grp, {', '.join(columns)}"
    with conn.cursor() as cur:
        cur.execute(f'SELECT {names} FROM "{stage}" LIMIT 0'.encode())
        assert cur.description is not None
        types = [column.type_code for column in cur.description]
        with cur.copy(f'COPY "{stage}" ({names}) FROM STDIN (FORMAT BINARY)'.encode()) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row((group, *row))


def upsert_from_stage(table: str, stage: str, columns: Sequence[str]) -> str:
    """Insert a group's rows; an existing row is overwritten only by a newer version."""
    names = ", ".join(columns)
    updates = ", ".join(f"{n} = excluded.{n}" for n in columns if n != "id")
    return (
        f'INSERT INTO "{table}" AS t ({names}) SELECT {names} FROM "{stage}" WHERE grp = %s '
        f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE t.version < excluded.version"
    )


def update_from_stage(table: str, stage: str, columns: Sequence[str]) -> str:
    """Update existing rows from a group; only rows older than the staged version."""
    sets = ", ".join(f"{n} = s.{n}" for n in columns if n != "id")
    return (
        f'UPDATE "{table}" AS t SET {sets} FROM "{stage}" AS s '
        "WHERE s.grp = %s AND t.id = s.id AND t.version < s.version"
    )
