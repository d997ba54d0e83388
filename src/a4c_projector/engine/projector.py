"""One projection batch: read a guarded slice of the log, apply it, move the position.

Everything a batch does — read-model upserts, the applied log, parked events and the
new tracking position — commits in **one transaction**. A crash at any point leaves the
previous position and the previous tables; the next batch replays from there, and the
version guards make the replay land on the same rows (exactly-once effect).

Poison events (an event that cannot be decoded, handled, or written: a batch the read
model refuses is rolled back and written again event by event, each in a savepoint, to
find which event it refuses): by default the batch is cut
just before it, the prefix is committed and :class:`PoisonEvent` is raised naming the
event; the position stays before it. With ``dead_letter=True`` the event is parked in
the dead-letter table with every later event of the same aggregate (so an aggregate's
events are applied in order or not at all) and the batch goes on.

(Just over 300 lines: the batch, its poison/one-by-one handling and its slice reading
share the projector's connections and state; what is not the batch's own lives in
:mod:`a4c_projector.readmodel` and :mod:`a4c_projector.eventlog`.)
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import Mapper

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.engine.readahead import Outcome, ReadAhead, Slice
from a4c_projector.eventlog.decoding import EventDecoder
from a4c_projector.eventlog.guard import DEFAULT_GAP_GRACE, Fence, GapGuard
from a4c_projector.eventlog.source import Notification, NotificationSource, take_fence
from a4c_projector.readmodel.deadletters import (
    ParkedEvent,
    any_parked,
    parked_among,
    record_parked,
)
from a4c_projector.readmodel.handlers import RowChange, RowHandlers
from a4c_projector.readmodel.members import backfill_members
from a4c_projector.readmodel.public_events import UnknownOrganization, backfill_public_events
from a4c_projector.readmodel.tables import LIVE, TableSet, ensure_schema
from a4c_projector.readmodel.tokens import backfill_tokens
from a4c_projector.readmodel.tracking import (
    DEFAULT_PROJECTION,
    advance_position,
    claim_position,
    ensure_tracking,
    read_position,
)
from a4c_projector.readmodel.writer import (
    COPY_THRESHOLD,
    one_round_trip,
    record_applied,
    write_changes,
)
from a4c_projector.settings import DEFAULT_BATCH_SIZE

FaultHook = Callable[[str, int], None]
log = logging.getLogger(__name__)
ONE_BY_ONE_LIMIT = 500  # events per batch while looking for the one a write refuses

# A write the read model refuses for the data in it (a constraint, a value out of range):
# one event's problem, found by writing the batch again event by event. Connection and
# schema errors are not: they fail every event alike, and propagate.
WRITE_ERRORS: tuple[type[Exception], ...] = (
    UnknownOrganization,  # a public event whose organization's registration is parked
    psycopg.IntegrityError,
    psycopg.DataError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
)


class PoisonEvent(Exception):
    """An event the projection cannot apply; the position stays before it."""

    def __init__(self, notification: Notification, cause: BaseException) -> None:
        self.notification_id = notification.notification_id
        self.topic = notification.topic
        self.originator_id = notification.originator_id
        super().__init__(
            f"cannot apply notification {notification.notification_id} "
            f"({notification.topic}) of aggregate {notification.originator_id} "
            f"version {notification.originator_version}: {type(cause).__name__}: {cause}"
        )


class NothingApplied(Exception):
    """A batch that changed nothing ends in a rollback, not a commit.

    It holds an xid (``claim_position`` locks the tracking row), so a commit would wait
    for a WAL flush, alongside the writers' commits, for nothing: a live projector runs
    many such batches (a wake-up whose events the previous batch already applied).
    """


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch runs; reference counting still frees.

    A catch-up batch keeps tens of thousands of young container objects alive until it
    ends (events, their state dicts, row changes, statement rows), none of them in a
    reference cycle. The collector would traverse them again and again as they age:
    about an eighth of the catch-up's CPU, measured. Collection resumes after the batch,
    when they are gone. Left alone if the application disabled the collector itself.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True)
class BatchResult:
    start: int
    position: int
    applied: int
    parked: int
    blocked: bool  # the guard held back rows that exist but are not yet safe
    duration: float

    @property
    def size(self) -> int:
        return self.applied + self.parked


class Projector:
    """Applies batches to one table set. Holds one connection; not thread-safe."""

    def __init__(
        self,
        location: Location,
        mapper: Mapper[Any],
        *,
        projection: str = DEFAULT_PROJECTION,
        tables: TableSet = LIVE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        dead_letter: bool = False,
        gap_grace: float = DEFAULT_GAP_GRACE,
        fault: FaultHook | None = None,
    ) -> None:
        self.location = location
        self.mapper = mapper
        self.decoder = EventDecoder(mapper)
        self.projection = projection
        self.tables = tables
        self.batch_size = batch_size
        self.dead_letter = dead_letter
        self.handlers = RowHandlers()
        self.source = NotificationSource(GapGuard(grace=gap_grace))
        self.fault = fault
        self._db: Database | None = None
        self._fence_db: Database | None = None
        self._reader_db: Database | None = None
        self.read_ahead = ReadAhead(self._read_slice)
        self._writing_upto = 0  # the position the batch being written moves to
        self._one_by_one_until: int | None = None  # a refused write lies at or below it

    # --- connections ------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            # Autocommit: every statement is in an explicit transaction, and a batch's
            # BEGIN can go with its first statements (Database.batch_transaction).
            self._db = connect(self.location, autocommit=True)
            ensure_schema(self._db, self.tables)
            with self._db.transaction():
                ensure_tracking(self._db, self.projection)
                backfill_members(self._db, self.tables)
                # Here, not in ensure_schema: it decodes events, with this mapper.
                backfill_tokens(self._db, self.tables, self.decoder, COPY_THRESHOLD)
                backfill_public_events(
                    self._db, self.tables, self.decoder, self.projection, COPY_THRESHOLD
                )
        return self._db

    def close(self) -> None:
        self.read_ahead.cancel()
        for db in (self._db, self._fence_db, self._reader_db):
            if db is not None:
                with contextlib.suppress(Exception):  # closing a broken connection
                    db.close()
        self._db = self._fence_db = self._reader_db = None

    def _take_fence(self) -> Fence:
        """See :mod:`a4c_projector.eventlog.guard`; on its own autocommit connection."""
        if self._fence_db is None:
            self._fence_db = connect(self.location, autocommit=True, purpose="fence")
        assert isinstance(self._fence_db, PostgresDatabase)  # SQLite rows never need one
        return take_fence(self._fence_db)

    def position(self) -> int:
        with self.db.transaction():
            return read_position(self.db, self.projection)

    def _hook(self, stage: str, notification_id: int) -> None:
        if self.fault is not None:
            self.fault(stage, notification_id)

    # --- one batch --------------------------------------------------------------------

    def run_batch(self, limit: int | None = None, stop: int | None = None) -> BatchResult:
        """Apply one batch; ``stop``: an already-proven position to read up to, unguarded."""
        with cyclic_gc_paused():
            if self._one_by_one_until is not None:
                short = min(limit or self.batch_size, ONE_BY_ONE_LIMIT)
                result = self._run_batch(short, stop, one_by_one=True)
                if result.position >= self._one_by_one_until or result.size == 0:
                    self._one_by_one_until = None
                return result
            try:
                return self._run_batch(limit, stop, one_by_one=False)
            except WRITE_ERRORS as exc:
                # Rolled back whole. Which event cannot be written? Each alone says: the
                # slice is applied again event by event, in short batches (each is one
                # statement per event, and the loop's heartbeat beats between batches).
                log.warning("a batch could not be written (%s); writing it event by event", exc)
                self._one_by_one_until = self._writing_upto
                return self.run_batch(limit, stop)

    def _run_batch(self, limit: int | None, stop: int | None, *, one_by_one: bool) -> BatchResult:
        """One batch. ``one_by_one``: write each event's change at once in a savepoint, so
        a change the read model refuses is met as that event's failure (poison or
        parked) rather than the whole batch's."""
        started = time.monotonic()
        db = self.db
        limit = limit or self.batch_size
        poison: PoisonEvent | None = None
        with contextlib.suppress(NothingApplied), db.batch_transaction():
            # One round trip, BEGIN included. The claim first: the probe then sees what
            # the batch the claim may have waited for committed (parked events included).
            with db.pipeline():
                claimed = claim_position(db, self.projection)
                parked_before = any_parked(db, self.tables)
            start = claimed()
            taken = self.read_ahead.take(start, limit, stop)
            ahead = taken if taken is not None else self._slice(db, start, limit, stop)
            rows = ahead.rows
            parked_aggregates = (
                parked_among(db, self.tables, (r.originator_id for r in rows))
                if parked_before()
                else set()
            )
            changes: list[RowChange] = []
            applied: list[int] = []
            parked: list[ParkedEvent] = []
            position = start
            for row, outcome in zip(rows, ahead.outcomes, strict=True):
                if row.originator_id in parked_aggregates:
                    parked.append(ParkedEvent.of(row, "an earlier event of it is parked"))
                    position = row.notification_id
                    continue
                try:
                    self._hook("handle", row.notification_id)
                    if isinstance(outcome, Exception):
                        raise outcome
                    if one_by_one and outcome is not None:
                        with db.savepoint():
                            write_changes(db, self.tables, [outcome])
                except Exception as exc:
                    if not self.dead_letter:
                        poison = PoisonEvent(row, exc)
                        break
                    parked_aggregates.add(row.originator_id)
                    parked.append(ParkedEvent.of(row, f"{type(exc).__name__}: {exc}"))
                    position = row.notification_id
                    continue
                if not one_by_one and outcome is not None:
                    changes.append(outcome)
                applied.append(row.notification_id)
                position = row.notification_id
            if poison is None and ahead.full and position != stop and not one_by_one:
                self._read_ahead_from(db, position, limit, stop)
            if position != start:
                self._writing_upto = position
                self._hook("before_write", position)
                with one_round_trip(db, len(applied) + len(parked)):
                    write_changes(db, self.tables, changes)
                    record_applied(db, self.tables, applied)
                    record_parked(db, self.tables, parked)
                    moved = advance_position(db, self.projection, start, position)
                moved()
                self._hook("before_commit", position)
            else:
                raise NothingApplied  # rolled back: its row lock is not worth a WAL flush
        if position != start:
            self._hook("after_commit", position)
        if poison is not None:
            raise poison
        return BatchResult(
            start=start,
            position=position,
            applied=len(applied),
            parked=len(parked),
            blocked=ahead.blocked,
            duration=time.monotonic() - started,
        )

    # --- reading and decoding ---------------------------------------------------------

    def _slice(self, db: Database, start: int, limit: int, stop: int | None) -> Slice:
        """Guarded rows after ``start``, each decoded and handled (or its error)."""
        rows = self.source.fetch(db, start, limit, self._take_fence, stop)
        outcomes: list[Outcome] = []
        for row in rows:
            try:
                change = self.handlers.changes(self.decoder.decode(row))
            except Exception as exc:  # poison or parked: the batch loop decides
                outcomes.append(exc)
                continue
            if change is not None:
                change.position = row.notification_id
            outcomes.append(change)
        return Slice(start, limit, stop, rows, outcomes, self.source.blocked)

    def _read_slice(self, start: int, limit: int, stop: int | None) -> Slice:
        """:meth:`_slice` on the read-ahead's own connection (runs in its thread)."""
        if self._reader_db is None:
            self._reader_db = connect(self.location, autocommit=True, purpose="read-ahead")
        try:
            return self._slice(self._reader_db, start, limit, stop)
        except Exception:
            with contextlib.suppress(Exception):  # a broken connection: next time, a new one
                self._reader_db.close()
            self._reader_db = None
            raise

    def _read_ahead_from(self, db: Database, position: int, limit: int, stop: int | None) -> None:
        """Start reading the slice after ``position`` while this batch is written.

        PostgreSQL only (SQLite has one connection's worth of concurrency), and only
        after a full slice: the projection is catching up and the next batch follows at
        once, so the slice will not be stale.
        """
        if db.concurrent_reads:
            self.read_ahead.start(position, limit, stop)

    def catch_up(self, until: int | None = None) -> int:
        """Apply batches until nothing safe is left (or ``until`` is reached)."""
        while True:
            result = self.run_batch()
            if result.size == 0 or (until is not None and result.position >= until):
                return result.position
