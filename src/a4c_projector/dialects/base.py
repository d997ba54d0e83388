"""What the projector asks of a database connection, whichever the dialect.

SQL is written once with ``%s`` placeholders. Where PostgreSQL and SQLite need different
SQL (DDL, reading the notification log, locks, filters over a list of ids) the
difference is a method here, implemented once per dialect in
:mod:`a4c_projector.dialects.postgres` and :mod:`a4c_projector.dialects.sqlite`;
nothing outside this package branches on the dialect. Opening a connection
(:func:`a4c_projector.dialects.connection.connect`) is always explicit: nothing here
connects at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from a4c_projector.dialects.location import Dialect, Location
from a4c_projector.schema import Table

Row = tuple[Any, ...]
# A notification-log row: (id, originator id as UUID, version, topic, state bytes, xid).
LogRow = tuple[int, Any, int, str, bytes, int | None]


class Database:
    """One connection. ``transaction()`` commits on success and rolls back on error."""

    dialect: Dialect
    location: Location

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    def executemany(self, statement: str, params: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def execute_later(self, statement: str, params: Sequence[Any] = ()) -> Callable[[], list[Row]]:
        """Send ``statement`` now; its rows when the returned function is called.

        Inside :meth:`pipeline` nothing waits for the server until something is read,
        so statements sent together, and read after, cost one round trip. Here (no
        pipeline): executed at once.
        """
        rows = self.execute(statement, params)
        return lambda: rows

    def pipeline(self) -> AbstractContextManager[None]:
        """Statements sent inside go to the server together: one round trip for all,
        when the block ends or something is read (no ``COPY`` inside)."""
        return nullcontext()

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def batch_transaction(self) -> AbstractContextManager[None]:
        """:meth:`transaction`, for a projector's batch: where the dialect can, its BEGIN
        is not waited for (one round trip fewer)."""
        return self.transaction()

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

    # --- what differs by dialect ------------------------------------------------------

    # The notification id column of the events table (SQLite: the rowid).
    id_column: str
    # Whether a second connection may read while this one writes (read-ahead).
    concurrent_reads: bool
    # What ``SELECT ... FROM projector_tracking`` appends to lock the row it reads.
    row_lock: str

    def log_rows(self, position: int, upper: int, limit: int) -> tuple[list[LogRow], int | None]:
        """Up to ``limit`` events with ids in ``(position, upper]``, in id order, read in
        one snapshot, and that snapshot's xid horizon (None on SQLite or no rows)."""
        raise NotImplementedError

    def events_table_exists(self) -> bool:
        raise NotImplementedError

    def table_exists(self, name: str) -> bool:
        """A table of this schema (PostgreSQL) or file (SQLite), by its plain name."""
        raise NotImplementedError

    def index_names(self, table: str) -> list[str]:
        raise NotImplementedError

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        """A condition ``column`` is one of ``values``, and its one parameter (however
        many values: a statement takes 65,535 parameters at most)."""
        raise NotImplementedError

    def has_tag(self, column: str) -> str:
        """A condition the text array ``column`` holds the parameter."""
        raise NotImplementedError

    def create_tables(self, sql_dir: Path | None, suffix: str) -> None:
        """The live tables (idempotent) and, for a ``suffix``, a fresh empty table set
        shaped like them. Inside a transaction."""
        raise NotImplementedError

    def replace_table(self, table: Table, live: str, fresh: str) -> None:
        """Drop ``live`` and give ``fresh`` its name, indexes included (in a transaction)."""
        raise NotImplementedError

    def lock_exclusively(self, tables: Sequence[str], timeout: float) -> None:
        """Lock ``tables`` against readers and writers until the transaction ends."""
        raise NotImplementedError

    def lock_against_writers(self, tables: Sequence[str]) -> None:
        """Lock ``tables`` against other writers (readers go on) until the transaction
        ends; two transactions taking this lock take turns."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
