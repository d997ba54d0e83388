"""Rebuild without downtime: fill a fresh table set, verify it, swap names atomically.

1. **Build** (no locks): fresh ``*__rebuild`` tables are projected from position 0
   (tracking row ``<projection>__rebuild``) while the live tables keep serving reads and
   the live runner keeps applying; the rebuild never passes the live position.
2. **Compare** (no locks): in one snapshot (:meth:`Database.snapshot`, PostgreSQL
   ``REPEATABLE READ``) read the live position, bring the fresh set exactly there (the
   snapshot sees its own writes), and let the database compare both sets row by row
   (:func:`a4c_projector.maintenance.compare.differing_rows`, all columns but ``updated_at``).
   Snapshot reads block nobody: readers and the live runner carry on, whatever the
   size of the tables.
3. **Swap** (brief exclusive lock): lock the live tables, apply the few events the live
   runner applied since the snapshot, compare the rows those events wrote (by primary
   key), drop the live set and rename the fresh one (tables and indexes) to the live
   names: :func:`a4c_projector.readmodel.tables.replace_tables`. The lock is held for the time of
   those few events and some renames, not for anything proportional to the tables; it
   is asked for with a timeout (:class:`SwapLock`) and again after a pause, so a long
   reader already holding the tables delays the swap, not every reader behind it.
   Readers see the old model until the commit and the new one after it, never a
   half-built one. (``__retired`` tables are left only by
   older versions; they are dropped at the start.)

A difference is reported and, unless ``force``, aborts the swap (the fresh tables are
kept for inspection): a rebuild that disagrees with the live model means one of them is
wrong, and an operator should decide which.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.persistence import Mapper

from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.source import head
from a4c_projector.maintenance.compare import differing_rows, touched_between
from a4c_projector.readmodel.members import backfill_members
from a4c_projector.readmodel.tables import (
    LIVE,
    REBUILD_SUFFIX,
    RETIRED_SUFFIX,
    TableSet,
    drop_tables,
    ensure_schema,
    replace_tables,
)
from a4c_projector.readmodel.tracking import DEFAULT_PROJECTION, forget_projection, read_position
from a4c_projector.settings import DEFAULT_BATCH_SIZE

Progress = Callable[[int, int], None]  # (position, head)
Checkpoint = Callable[[str], None]  # the phase being entered: "compare", "swap"
log = logging.getLogger(__name__)


class RebuildMismatch(Exception):
    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        shown = "; ".join(differences[:10])
        super().__init__(
            f"rebuilt tables differ from the live ones in {len(differences)} rows: {shown}"
        )


@dataclass
class RebuildReport:
    """``position``: where the live projection was, and so the rebuilt one is; ``head``:
    the event store's highest event then (the rebuild never passes the live position)."""

    position: int
    events: int
    head: int
    differences: list[str] = field(default_factory=list)
    swapped: bool = False

    @property
    def behind(self) -> int:
        """Events the live projection (and so the rebuilt one) had not applied."""
        return max(0, self.head - self.position)

    def warning(self, projection: str) -> str | None:
        """What an operator must know when the live projection is behind; None if not."""
        if not self.behind:
            return None
        return (
            f"the live projection {projection!r} is {self.behind} events behind the event "
            f"store (position {self.position} of {self.head}): the rebuild went only as far "
            "as it; run the projector (a4c-projector run) to apply the rest"
        )


def rebuild(
    location: Location,
    mapper: Mapper[Any],
    *,
    projection: str = DEFAULT_PROJECTION,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dead_letter: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
    swap_lock: SwapLock | None = None,
) -> RebuildReport:
    """Rebuild ``projection`` from scratch; ``checkpoint(phase)`` is called on entering
    the ``"compare"`` phase (inside its snapshot) and the ``"swap"`` phase (under the
    lock), so tests can act at those moments. ``dead_letter`` as the live runner has it:
    poison events are parked in the fresh set as they were in the live one, rather than
    stopping the rebuild (:class:`~a4c_projector.engine.projector.PoisonEvent`)."""
    fresh = TableSet(REBUILD_SUFFIX)
    retired = TableSet(RETIRED_SUFFIX)
    fresh_projection = projection + REBUILD_SUFFIX
    with connect(location) as setup:
        ensure_schema(setup, LIVE)
        drop_tables(setup, fresh)
        drop_tables(setup, retired)
        ensure_schema(setup, fresh)
        with setup.transaction():
            backfill_members(setup, LIVE)
            forget_projection(setup, fresh_projection)
    builder = Projector(
        location,
        mapper,
        projection=fresh_projection,
        tables=fresh,
        batch_size=batch_size,
        dead_letter=dead_letter,
    )
    try:
        db = builder.db
        events = _build(builder, projection, progress)
        with db.snapshot():
            target, top = read_position(db, projection), head(db)
            events += _catch_up(builder, target)
            if checkpoint is not None:
                checkpoint("compare")
            differences = differing_rows(db, LIVE, fresh)
        report = RebuildReport(position=target, events=events, head=top, differences=differences)
        if differences and not force:
            raise RebuildMismatch(differences)
        _swap(builder, projection, report, force, checkpoint, swap_lock)
        if progress is not None:
            progress(report.position, report.position)
        return report
    finally:
        builder.close()


@dataclass(frozen=True)
class SwapLock:
    """How the swap waits for the live tables' exclusive lock (PostgreSQL).

    A lock request queues behind a long reader, and every read after it queues behind
    the request: waiting without bound would stall all readers for as long as that one
    reader takes. Each attempt waits ``timeout`` seconds at most, then lets the queue
    go and tries again after ``pause``; readers are held up ``timeout`` at worst.
    """

    timeout: float = 0.5
    attempts: int = 40
    pause: float = 0.5


class SwapLockUnavailable(Exception):
    """The live tables stayed busy through every attempt; the fresh set is kept."""


def _swap(
    builder: Projector,
    projection: str,
    report: RebuildReport,
    force: bool,
    checkpoint: Checkpoint | None,
    swap_lock: SwapLock | None,
) -> None:
    """Phase 3: under the live tables' lock, apply what the live runner applied since
    the comparison, compare the rows those events wrote, and swap the names."""
    db, policy = builder.db, swap_lock or SwapLock()
    fresh_projection = builder.projection
    for attempt in range(1, policy.attempts + 1):
        try:
            with db.transaction():
                db.lock_exclusively(LIVE.all, policy.timeout)
                if checkpoint is not None:
                    checkpoint("swap")
                compared = report.position
                position, top = read_position(db, projection), head(db)
                events = _catch_up(builder, position)
                late = differing_rows(
                    db, LIVE, builder.tables, touched_between(db, compared, position)
                )
                if late and not force:
                    raise RebuildMismatch(late)
                replace_tables(db, LIVE, builder.tables)
                forget_projection(db, fresh_projection)
            report.position, report.head, report.swapped = position, top, True
            report.events += events
            report.differences += late
            return
        except psycopg.errors.LockNotAvailable:
            log.warning(
                "swap: the live tables are busy (attempt %d of %d); retrying in %.1fs",
                attempt,
                policy.attempts,
                policy.pause,
            )
            time.sleep(policy.pause)
    raise SwapLockUnavailable(
        f"could not lock the live tables within {policy.timeout}s in {policy.attempts} "
        "attempts (a long-running reader or writer holds them); the verified fresh tables "
        f"are kept as *{REBUILD_SUFFIX}: run the rebuild again when the database is quieter"
    )


def _build(builder: Projector, projection: str, progress: Progress | None) -> int:
    """Phase 1: batches alongside the live runner, up to its position; events applied."""
    db, events = builder.db, 0
    while True:
        with db.transaction():
            target, top = read_position(db, projection), head(db)
        result = builder.run_batch(stop=target)
        events += result.size
        if progress is not None:
            progress(result.position, top)
        if result.position >= target or result.size == 0:
            return events


def _catch_up(builder: Projector, target: int) -> int:
    """Apply batches up to exactly ``target`` (already proven complete by the live
    projection); the number of events applied."""
    events = 0
    while True:
        result = builder.run_batch(stop=target)
        events += result.size
        if result.position >= target or result.size == 0:
            break
    if result.position != target:
        raise RuntimeError(f"rebuild reached {result.position}, not the live position {target}")
    return events
