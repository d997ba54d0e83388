"""Where the event store and the read models live: configuration only, no connection
(:func:`a4c_projector.dialects.connection.connect` opens one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from psycopg import sql as pgsql

Dialect = Literal["postgres", "sqlite"]


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

    def application_name(self, purpose: str) -> str:
        """``a4c-projector:<purpose>:<schema>`` (PostgreSQL keeps 63 bytes)."""
        return f"a4c-projector:{purpose}:{self.schema}"[:63]

    @property
    def qualified_events_table(self) -> str:
        if self.dialect == "postgres":
            return pgsql.Identifier(self.schema, self.events_table).as_string(None)
        return self.events_table
