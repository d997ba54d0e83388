# ruff: noqa: S608 - SQL identifiers come from code (table sets, recorder names); values are bound
"""PostgreSQL: psycopg connections, the DDL from ``sql/``, binary log reads, table swaps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from a4c_projector.dialects.base import Database, LogRow, Row
from a4c_projector.dialects.location import Dialect, Location
from a4c_projector.dialects.sqldir import sql_files
from a4c_projector.schema import PER_SET, Table

IDLE = TransactionStatus.IDLE


class PostgresDatabase(Database):
    dialect: Dialect = "postgres"

    def __init__(self, conn: psycopg.Connection[Any], location: Location) -> None:
        self.conn = conn
        self.location = location
        self._pipeline: psycopg.Pipeline | None = None
        self._begin_pending = False  # batch_transaction: BEGIN not sent yet

    def _begin(self) -> None:
        """Send a :meth:`batch_transaction`'s BEGIN before the first statement of it (in a
        pipeline: with it, not waited for)."""
        if self._begin_pending:
            self._begin_pending = False
            self.conn.execute(b"BEGIN")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        self._begin()
        with self.conn.cursor() as cur:
            cur.execute(statement.encode(), params or None)
            if self._pipeline is not None:
                # Nothing has come back yet (no description either): wait for it, or a
                # read would find no rows. A write that needs no answer: executemany.
                self._pipeline.sync()
            return list(cur.fetchall()) if cur.description else []

    def executemany(self, statement: str, params: Iterable[Sequence[Any]]) -> None:
        rows = list(params)
        if rows:
            self._begin()
            with self.conn.cursor() as cur:
                cur.executemany(statement.encode(), rows)

    def execute_later(self, statement: str, params: Sequence[Any] = ()) -> Callable[[], list[Row]]:
        self._begin()
        cur = self.conn.cursor()
        cur.execute(statement.encode(), params or None)

        def rows() -> list[Row]:
            with cur:
                return list(cur.fetchall()) if cur.description else []

        return rows

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        outer = self._pipeline
        with self.conn.pipeline() as pipeline:
            self._pipeline = pipeline
            self._begin()
            try:
                yield
            finally:
                self._pipeline = outer

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._begin()
        with self.conn.transaction():
            yield

    @contextmanager
    def batch_transaction(self) -> Iterator[None]:
        """On a connection in autocommit mode (the projector's), BEGIN goes with the first
        statements, in their :meth:`pipeline` (psycopg's own waits for BEGIN's reply)."""
        if not self.conn.autocommit or self.conn.info.transaction_status != IDLE:
            with self.transaction():
                yield
            return
        self._begin_pending = True
        try:
            yield
        except BaseException:
            if not self._begin_pending:
                with contextlib.suppress(psycopg.Error):  # a broken connection rolled back
                    self.conn.execute(b"ROLLBACK")
            raise
        else:
            if not self._begin_pending:
                self.conn.execute(b"COMMIT")
        finally:
            self._begin_pending = False

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._begin()
        with self.conn.transaction():  # nested in an open transaction: a savepoint
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self.conn.transaction():
            # Must be the first statement: fails loudly if a transaction is already open.
            self.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    @property
    def backend_pid(self) -> int:
        return int(self.conn.info.backend_pid)

    # --- what differs by dialect ------------------------------------------------------

    id_column = "notification_id"
    concurrent_reads = True
    row_lock = " FOR UPDATE"

    def log_rows(self, position: int, upper: int, limit: int) -> tuple[list[LogRow], int | None]:
        """With each row its writer's xid, and the snapshot's xmin horizon
        (:mod:`a4c_projector.eventlog.guard`). Results are binary: bytea and uuid arrive
        as bytes, not as hex and text to parse."""
        self._begin()
        with self.conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state, "
                "xmin::text::bigint, pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
                f"FROM {self.location.qualified_events_table} "
                "WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s".encode(),
                (position, upper, limit),
            )
            rows = cur.fetchall()
        horizon = int(rows[0][6]) if rows else None
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows], horizon

    def events_table_exists(self) -> bool:
        return (
            self.execute("SELECT to_regclass(%s)", (self.location.qualified_events_table,))[0][0]
            is not None
        )

    def table_exists(self, name: str) -> bool:
        return self.execute("SELECT to_regclass(%s)", (f'"{name}"',))[0][0] is not None

    def index_names(self, table: str) -> list[str]:
        rows = self.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = to_regclass(%s) ORDER BY 1",
            (f'"{table}"',),
        )
        return [str(r[0]) for r in rows]

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        return f"{column} = ANY(%s)", list(values)

    def has_tag(self, column: str) -> str:
        return f"{column} @> ARRAY[%s]::text[]"

    def create_tables(self, sql_dir: Path | None, suffix: str) -> None:
        """The ``sql/`` files; a fresh set is cloned from the live tables (``LIKE ...
        INCLUDING ALL``), so it has their exact columns, constraints and indexes."""
        # Concurrent replicas may start together: serialise DDL on a transaction lock.
        # Its key names the schema: ``CREATE INDEX IF NOT EXISTS`` waits for every open
        # write on the table, and with one key for the whole database a single busy
        # store would hold up the start of every projector of every other store.
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"a4c_projector_ddl:{self.location.schema}",),
        )
        for path in sql_files(sql_dir or self.location.sql_dir):
            self.execute(path.read_text())
        if suffix:
            for table in PER_SET:
                self.execute(
                    f'CREATE TABLE IF NOT EXISTS "{table.name}{suffix}" '
                    f'(LIKE "{table.name}" INCLUDING ALL)'
                )

    def replace_table(self, table: Table, live: str, fresh: str) -> None:
        """Indexes keep their *live* names: PostgreSQL renames a table but not its
        indexes, and ``LIKE ... INCLUDING ALL`` named the fresh ones after the fresh
        table. Were they left so, the next start's ``CREATE INDEX IF NOT EXISTS
        organizations_status_idx`` would add a duplicate of every index, and each
        rebuild another. So each fresh index takes the name of the live index with the
        same definition."""
        names = self._index_names_by_definition(live)
        self.execute(f'DROP TABLE "{live}"')
        self.execute(f'ALTER TABLE "{fresh}" RENAME TO "{live}"')
        for key, fresh_indexes in self._index_names_by_definition(live).items():
            for old, new in zip(fresh_indexes, names.get(key, []), strict=False):
                if old != new:
                    self.execute(f'ALTER INDEX "{old}" RENAME TO "{new}"')

    def _index_names_by_definition(self, table: str) -> dict[tuple[bool, str], list[str]]:
        """Index names of ``table`` keyed by (unique, method and columns), e.g.
        ``btree (status)``."""
        rows = self.execute(
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

    def lock_exclusively(self, tables: Sequence[str], timeout: float) -> None:
        """``timeout``: how long to wait for the lock (then ``LockNotAvailable``)."""
        names = ", ".join(f'"{t}"' for t in tables)
        self.execute(f"SET LOCAL lock_timeout = '{int(timeout * 1000)}ms'")
        self.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")

    def lock_against_writers(self, tables: Sequence[str]) -> None:
        names = ", ".join(f'"{t}"' for t in tables)
        # SHARE ROW EXCLUSIVE conflicts with itself and with every write (ROW EXCLUSIVE).
        self.execute(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")

    def close(self) -> None:
        self.conn.close()
