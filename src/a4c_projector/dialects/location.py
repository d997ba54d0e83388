"""Where the event store and the read models live, and how to connect to them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

from a4c_projector.dialects.base import Database, Dialect
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.dialects.sqlite import SQLiteDatabase


@dataclass(frozen=True)
class Location:
    """Where the event store and the read models live (they share one database)."""

    dialect: Dialect
    # PostgreSQL: built by psycopg from keywords (a4c_projector.eventlog.store), never
    # joined by hand; it may hold the password, so it is kept out of reprs.
    conninfo: str = field(default="", repr=False)
    # PostgreSQL: POSTGRES_GET_PASSWORD_TOPIC, asked for every new connection.
    get_password: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    schema: str = "public"  # PostgreSQL
    sqlite_path: str = ""  # SQLite
    events_table: str = "a4c_events"
    # The read-model DDL; None: discovered (a4c_projector.dialects.sqldir.find_sql_dir).
    sql_dir: Path | None = None

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
