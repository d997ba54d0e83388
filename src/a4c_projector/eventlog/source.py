# ruff: noqa: S608 - SQL identifiers come from code (TableSet, recorder names); values are bound
"""Reading the event store's notification log: fetch and guard.

Rows are fetched with one statement (one snapshot) together with the writer's xid and
the snapshot's xmin horizon, then cut to the prefix :mod:`a4c_projector.eventlog.guard`
allows. Decoding them is :mod:`a4c_projector.eventlog.decoding`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple
from uuid import UUID

from a4c_domain.errors import ConfigurationError
from a4c_projector.dialects.base import Database
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.eventlog.guard import Fence, FetchedRow, GapGuard


class Notification(NamedTuple):
    """One row of the notification log (a tuple: built for every event of a catch-up)."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes
    xid: int | None


class NotificationSource:
    """Guarded reads of the notification log, for one projector."""

    def __init__(self, guard: GapGuard | None = None) -> None:
        self.guard = guard or GapGuard()
        self.blocked = False  # the last fetch stopped at an unsafe row or an open gap

    def fetch(
        self,
        db: Database,
        position: int,
        limit: int,
        take_fence: Callable[[], Fence],
        stop: int | None = None,
    ) -> list[Notification]:
        """Up to ``limit`` notifications after ``position`` that are safe to apply.

        ``stop``: read only up to this id, without the guard — for positions another
        projection has already proven complete (a rebuild following the live one).
        """
        upper = 2**63 - 1 if stop is None else stop
        if stop is None and self.guard.watching and isinstance(db, PostgresDatabase):
            # Before the fetch: its snapshot must include what those writers committed.
            running, prepared = running_transactions(db, self.guard.writers_to_watch())
            self.guard.observe_writers(running, prepared=prepared)
        fetched, horizon = read_log(db, position, min(upper, position + limit), limit)
        if not fetched and upper > position + limit:
            # A whole window of ids without a visible row (rolled-back inserts, or
            # writers still open): look past it; the guard decides what is safe.
            fetched, horizon = read_log(db, position, upper, limit)
        if stop is not None:
            self.blocked = False
            return fetched
        safe = self.guard.safe_prefix(
            [FetchedRow(n.notification_id, n.xid) for n in fetched],
            position,
            horizon,
            time.monotonic(),
            take_fence,
        )
        self.blocked = safe < len(fetched)
        return fetched[:safe]


def read_log(
    db: Database, position: int, upper: int, limit: int
) -> tuple[list[Notification], int | None]:
    """Up to ``limit`` rows with ids in ``(position, upper]``, in one snapshot, and its
    xid horizon (PostgreSQL; None on SQLite or without rows).

    Callers bound ``upper`` to ``position + limit`` first: ``ORDER BY ... LIMIT`` over an
    open range lets the planner, without fresh statistics (just after a bulk load),
    pick a bitmap scan of *every* later row plus a sort — each batch then costs as much
    as the rest of the log, and a catch-up becomes quadratic. Ids are dense (a gap is a
    rolled-back insert), so a window of ``limit`` ids normally holds ``limit`` rows.
    """
    rows, horizon = db.log_rows(position, upper, limit)
    return [Notification._make(r) for r in rows], horizon


def notification(db: Database, notification_id: int) -> Notification | None:
    """One row of the log by id (unguarded: for ids already known to be committed)."""
    found, _ = read_log(db, notification_id - 1, notification_id, 1)
    return found[0] if found else None


def first_after(db: Database, position: int) -> Notification | None:
    """The oldest committed row after ``position`` (unguarded)."""
    found, _ = read_log(db, position, 2**63 - 1, 1)
    return found[0] if found else None


# The name and CACHE of the notification-id sequence of the events table (parameter).
SEQUENCE_CACHE_SQL = (
    "SELECT seq.seqrelid::regclass::text, seq.seqcache FROM pg_sequence seq "
    "WHERE seq.seqrelid = to_regclass(pg_get_serial_sequence(%s, 'notification_id'))"
)


def check_ids_drawn_in_order(db: Database) -> None:
    """Refuse a notification-id sequence that hands out ids out of time order.

    The guard's argument (:mod:`a4c_projector.eventlog.guard`) needs ids drawn in increasing
    order over time: a sequence ``CACHE`` above 1 gives each session a block of its own,
    so a low id can be drawn after a higher one committed, and then skipped for ever.
    ``bigserial`` (what eventsourcing creates) has ``CACHE 1``. Checked at start and
    again with every fence (:func:`take_fence`).
    """
    if not isinstance(db, PostgresDatabase):
        return  # SQLite assigns rowids in commit order
    table = db.location.qualified_events_table
    if not db.events_table_exists():
        return  # no event store here (yet): nothing to tail
    rows = db.execute(SEQUENCE_CACHE_SQL, (table,))
    if rows:
        _refuse_a_cached_sequence(table, str(rows[0][0]), int(rows[0][1]))


def _refuse_a_cached_sequence(table: str, sequence: str, cache: int) -> None:
    if cache > 1:
        raise ConfigurationError(
            f"the notification id sequence {sequence} of {table} has CACHE {cache}: "
            "ids can then be drawn out of order and the projector could skip events; "
            f"run ALTER SEQUENCE {sequence} CACHE 1"
        )


# A lock on the events table for writing, in this database (pg_locks; parameter: the table).
WRITE_LOCK_SQL = (
    "locktype = 'relation' AND relation = to_regclass(%s) "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', "
    "'AccessExclusiveLock')"
)


def take_fence(db: PostgresDatabase) -> Fence:
    """A fresh xid, and the transactions now locking the events table for writing (see
    :mod:`a4c_projector.eventlog.guard`). ``db``: autocommit, so the xid is committed at once.

    The same statement reads the sequence's ``CACHE`` again: a gap is only ever passed
    after a fence, so an ``ALTER SEQUENCE ... CACHE 20`` made while the projector runs
    stops it (:class:`ConfigurationError`) before it can pass an id drawn out of order.
    """
    table = db.location.qualified_events_table
    row = db.execute(
        "SELECT pg_current_xact_id()::text::bigint, "
        "array(SELECT DISTINCT coalesce(virtualtransaction, '') FROM pg_locks "
        f"WHERE {WRITE_LOCK_SQL}), sequence.* "
        f"FROM (SELECT 1) one LEFT JOIN ({SEQUENCE_CACHE_SQL}) sequence ON true",
        (table, table),
    )[0]
    if row[3] is not None:
        _refuse_a_cached_sequence(table, str(row[2]), int(row[3]))
    writers = frozenset(str(v) for v in row[1])
    # A prepared writer is watched too: by its locks, see running_transactions.
    return Fence(int(row[0]), writers if all(writers) else None)


def running_transactions(db: PostgresDatabase, ids: frozenset[str]) -> tuple[set[str], bool]:
    """Those of the virtual transaction ids ``ids`` still running, and whether a prepared
    transaction holds a write lock on the events table (for
    :meth:`~a4c_projector.eventlog.guard.GapGuard.observe_writers`).

    A transaction holds locks under its virtual transaction id (its own, at least) until
    it ends. ``PREPARE TRANSACTION`` moves its locks to a prepared transaction — shown
    with no pid, and under the writer's id (PostgreSQL 15) or ``-1/<xid>`` (other
    versions) — that can still commit. One scan of ``pg_locks``: one consistent look.
    """
    table = db.location.qualified_events_table
    rows = db.execute(
        "SELECT virtualtransaction, prepared FROM (SELECT virtualtransaction, "
        f"(pid IS NULL AND {WRITE_LOCK_SQL}) AS prepared FROM pg_locks) locks "
        "WHERE prepared OR virtualtransaction = ANY(%s)",
        (table, list(ids)),
    )
    running = {str(r[0]) for r in rows if str(r[0]) in ids}
    return running, any(bool(r[1]) for r in rows)


def head(db: Database) -> int:
    """The highest notification id in the store (committed and visible now)."""
    table = db.location.qualified_events_table
    rows = db.execute(f"SELECT coalesce(max({db.id_column}), 0) FROM {table}")
    return int(rows[0][0])
