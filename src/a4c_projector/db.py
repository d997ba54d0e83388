"""A thin connection wrapper so the projector speaks to PostgreSQL and SQLite alike.

SQL is written once with ``%s`` placeholders; the SQLite side rewrites them to ``?``
and adapts values SQLite has no type for (UUIDs and datetimes as text, lists as JSON).
Opening a connection is always explicit: nothing here connects at import time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql as pgsql

Dialect = Literal["postgres", "sqlite"]
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Location:
    """Where the event store and the read models live (they share one database)."""

    dialect: Dialect
    # PostgreSQL: built by psycopg from keywords (store.py), never joined by hand; it
    # may hold the password, so it is kept out of reprs.
    conninfo: str = field(default="", repr=False)
    # PostgreSQL: POSTGRES_GET_PASSWORD_TOPIC, asked for every new connection.
    get_password: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    schema: str = "public"  # PostgreSQL
    sqlite_path: str = ""  # SQLite
    events_table: str = "a4c_events"
    sql_dir: Path | None = None  # the read-model DDL; None: discovered (tables.find_sql_dir)

    def connect(self, *, autocommit: bool = False, purpose: str = "batch") -> Database:
        """A new connection; ``purpose`` names it in ``pg_stat_activity`` for operators."""
        if self.dialect == "postgres":
            conn = psycopg.connect(
                self.conninfo,  # carries the operator's connect_timeout
                password=self.get_password() if self.get_password else None,
                autocommit=autocommit,
                options=f"-c search_path={self.schema}",
                application_name=self.application_name(purpose),
                # A peer that vanishes without a FIN (node lost) is noticed in ~25 s
                # instead of the kernel's two hours.
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
            return PostgresDatabase(conn, self)
        lite = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
        lite.execute("PRAGMA journal_mode=WAL")
        lite.execute("PRAGMA busy_timeout=30000")
        return SQLiteDatabase(lite, self)

    def application_name(self, purpose: str) -> str:
        """``a4c-projector:<purpose>:<schema>`` (PostgreSQL keeps 63 bytes)."""
        return f"a4c-projector:{purpose}:{self.schema}"[:63]

    @property
    def qualified_events_table(self) -> str:
        if self.dialect == "postgres":
            return pgsql.Identifier(self.schema, self.events_table).as_string(None)
        return self.events_table


class Database:
    """One connection. ``transaction()`` commits on success and rolls back on error."""

    dialect: Dialect
    location: Location

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    def executemany(self, statement: str, params: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a transaction: what runs in it is undone alone if it raises."""
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[None]:
        """A transaction whose reads all see one moment (and its own writes).

        PostgreSQL: ``REPEATABLE READ``, which takes no lock that would block writers
        or readers of other connections. SQLite: the write transaction (WAL readers are
        not blocked; other writers wait, SQLite has only one).
        """
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresDatabase(Database):
    dialect: Dialect = "postgres"

    def __init__(self, conn: psycopg.Connection[Any], location: Location) -> None:
        self.conn = conn
        self.location = location

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.conn.cursor() as cur:
            cur.execute(statement.encode(), params or None)
            return list(cur.fetchall()) if cur.description else []

    def executemany(self, statement: str, params: Iterable[Sequence[Any]]) -> None:
        rows = list(params)
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(statement.encode(), rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    @contextmanager
    def savepoint(self) -> Iterator[None]:
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

    def close(self) -> None:
        self.conn.close()


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

    def close(self) -> None:
        self.conn.close()
