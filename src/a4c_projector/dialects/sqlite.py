# ruff: noqa: S608 - SQL identifiers come from code (table sets, recorder names); values are bound
"""SQLite: ``%s`` placeholders rewritten to ``?``, values SQLite has no type for adapted
(UUIDs and datetimes as text, lists as JSON), the DDL derived from the schema
(:func:`a4c_projector.schema.sqlite_ddl`).

SQLite has one writer at a time (``BEGIN IMMEDIATE``) and assigns rowids in commit order,
so it needs no row locks, no table locks for a swap, and no gap guard.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from a4c_projector.dialects.base import Database, LogRow, Row
from a4c_projector.dialects.location import Dialect, Location
from a4c_projector.schema import PER_SET, SQLITE_AFFINITY, TABLES, Table, sqlite_ddl


def adapt_for_sqlite(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return value


class SQLiteDatabase(Database):
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, location: Location) -> None:
        self.conn = conn
        self.location = location
        self._depth = 0

    @staticmethod
    def _sql(statement: str) -> str:
        return statement.replace("%s", "?")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        cur = self.conn.execute(self._sql(statement), [adapt_for_sqlite(p) for p in params])
        return list(cur.fetchall())

    def executemany(self, statement: str, params: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(
            self._sql(statement), ([adapt_for_sqlite(p) for p in row] for row in params)
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:  # nested, as on PostgreSQL: a savepoint
            with self.savepoint():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth -= 1

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        name = f"a4c_savepoint_{self._depth}"
        self.conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            raise
        finally:
            self._depth -= 1
            self.conn.execute(f"RELEASE {name}")

    def snapshot(self) -> AbstractContextManager[None]:
        return self.transaction()

    # --- what differs by dialect ------------------------------------------------------

    id_column = "rowid"
    concurrent_reads = False  # one connection's worth of concurrency
    row_lock = ""  # BEGIN IMMEDIATE already admits one writer at a time

    def log_rows(self, position: int, upper: int, limit: int) -> tuple[list[LogRow], int | None]:
        rows = self.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.location.qualified_events_table} "
            "WHERE rowid > %s AND rowid <= %s ORDER BY rowid LIMIT %s",
            (position, upper, limit),
        )
        return [(r[0], UUID(r[1]), r[2], r[3], bytes(r[4]), None) for r in rows], None

    def events_table_exists(self) -> bool:
        return self.table_exists(self.location.events_table)

    def table_exists(self, name: str) -> bool:
        return bool(
            self.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = %s", (name,)
            )
        )

    def index_names(self, table: str) -> list[str]:
        rows = self.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s ORDER BY name",
            (table,),
        )
        return [str(r[0]) for r in rows]

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        # A list is passed to SQLite as a JSON array.
        return f"{column} IN (SELECT value FROM json_each(%s))", [str(v) for v in values]

    def has_tag(self, column: str) -> str:
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = %s)"

    def create_tables(self, sql_dir: Path | None, suffix: str) -> None:
        for table in TABLES:
            for statement in sqlite_ddl(table):
                self.execute(statement)
            self._add_missing_columns(table)
        if suffix:
            for table in PER_SET:
                for statement in sqlite_ddl(table, suffix):
                    self.execute(statement)

    def _add_missing_columns(self, table: Table) -> None:
        """A table an earlier release created lacks the columns added since: appended
        (nullable, as ``sql/``'s ``ADD COLUMN IF NOT EXISTS`` migrations add them)."""
        present = {row[1] for row in self.execute(f'PRAGMA table_info("{table.name}")')}
        for column in table.columns:
            if column.name not in present:
                assert column.nullable, f"{table.name}.{column.name} added without a default"
                self.execute(
                    f'ALTER TABLE "{table.name}" ADD COLUMN {column.name} '
                    f"{SQLITE_AFFINITY[column.type]}"
                )

    def replace_table(self, table: Table, live: str, fresh: str) -> None:
        """SQLite cannot rename an index: the fresh table's are dropped and the live
        names created again."""
        self.execute(f'DROP TABLE "{live}"')
        self.execute(f'ALTER TABLE "{fresh}" RENAME TO "{live}"')
        for (index,) in self.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
            "AND sql IS NOT NULL",
            (live,),
        ):
            self.execute(f'DROP INDEX "{index}"')
        for statement in sqlite_ddl(table, live.removeprefix(table.name)):
            self.execute(statement)

    def lock_exclusively(self, tables: Sequence[str], timeout: float) -> None:
        pass  # the write transaction already excludes every other writer

    def lock_against_writers(self, tables: Sequence[str]) -> None:
        pass  # the write transaction already excludes every other writer

    def close(self) -> None:
        self.conn.close()
