# ruff: noqa: S608 - SQL identifiers come from code (TableSet); values are bound
"""Parked events: park them, find them, list them, and retry them once the cause is fixed.

A batch parks a poison event with every later event of the same aggregate (so an
aggregate's events are applied in order or not at all): :func:`record_parked`,
:func:`parked_among`.

A retry takes an aggregate's parked events in version order and applies them like a
batch does (version-guarded upserts, applied log) in one transaction, removing them from
the dead-letter table. If any still fails, nothing of that aggregate changes.

A retry may run while the daemon is live (``a4c-projector dead-letter retry`` is another
process). Its transaction claims the projection's tracking row first, as every batch
does (:func:`a4c_projector.readmodel.tracking.claim_position`), and reads the parked
events only then. So a batch that parks a later event of the same aggregate commits
either before the retry (which then retries that event too) or after it (and then sees
nothing parked and applies the event in order): an aggregate is never left half retried
with a later event applied over a missing one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from a4c_projector.dialects.base import Database
from a4c_projector.eventlog.decoding import EventDecoder
from a4c_projector.eventlog.source import Notification, notification
from a4c_projector.readmodel.handlers import RowHandlers
from a4c_projector.readmodel.tables import LIVE, TableSet
from a4c_projector.readmodel.tracking import DEFAULT_PROJECTION, claim_position
from a4c_projector.readmodel.writer import record_applied, write_changes


@dataclass(frozen=True)
class ParkedEvent:
    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    error: str

    @classmethod
    def of(cls, row: Notification, error: str) -> ParkedEvent:
        return cls(row.notification_id, row.originator_id, row.originator_version, row.topic, error)


def record_parked(db: Database, tables: TableSet, parked: Sequence[ParkedEvent]) -> None:
    db.executemany(
        f'INSERT INTO "{tables.dead_letters}" '
        "(notification_id, originator_id, originator_version, topic, error) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (notification_id) DO NOTHING",
        [
            (p.notification_id, p.originator_id, p.originator_version, p.topic, p.error)
            for p in parked
        ],
    )


def any_parked(db: Database, tables: TableSet) -> Callable[[], bool]:
    """Whether any event is parked: sent now, read when called (a batch sends it with its
    claim, in one round trip). Almost always false, which spares :func:`parked_among`."""
    exists = db.execute_later(f'SELECT EXISTS (SELECT 1 FROM "{tables.dead_letters}")')
    return lambda: bool(exists()[0][0])


def parked_among(db: Database, tables: TableSet, aggregates: Iterable[UUID]) -> set[UUID]:
    """Those of ``aggregates`` with a parked event."""
    wanted = list(set(aggregates))
    if not wanted:
        return set()
    where, param = db.in_list("originator_id", wanted)
    found = db.execute(
        f'SELECT DISTINCT originator_id FROM "{tables.dead_letters}" WHERE {where}', (param,)
    )
    return {UUID(str(r[0])) for r in found}


def list_parked(
    db: Database, tables: TableSet = LIVE, originator_id: UUID | None = None
) -> list[ParkedEvent]:
    where, params = ("WHERE originator_id = %s", (originator_id,)) if originator_id else ("", ())
    rows = db.execute(
        "SELECT notification_id, originator_id, originator_version, topic, error "
        f'FROM "{tables.dead_letters}" {where} ORDER BY notification_id',
        params,
    )
    return [ParkedEvent(r[0], UUID(str(r[1])), r[2], r[3], r[4]) for r in rows]


def count_parked(db: Database, tables: TableSet = LIVE) -> int:
    return int(db.execute(f'SELECT count(*) FROM "{tables.dead_letters}"')[0][0])


@dataclass(frozen=True)
class RetryOutcome:
    originator_id: UUID
    applied: int
    error: str | None


def retry_parked(
    db: Database,
    mapper: Mapper[Any],
    tables: TableSet = LIVE,
    originator_id: UUID | None = None,
    *,
    projection: str = DEFAULT_PROJECTION,
) -> list[RetryOutcome]:
    """Retry every parked aggregate (or one), each in its own transaction."""
    with db.transaction():
        aggregates = sorted({p.originator_id for p in list_parked(db, tables, originator_id)})
    outcomes: list[RetryOutcome] = []
    decoder = EventDecoder(mapper)
    for aggregate in aggregates:
        try:
            with db.transaction():
                claim_position(db, projection)()  # waits for a batch in flight
                applied = _apply_parked(db, decoder, tables, aggregate)
            outcomes.append(RetryOutcome(aggregate, applied, None))
        except Exception as exc:
            outcomes.append(RetryOutcome(aggregate, 0, f"{type(exc).__name__}: {exc}"))
    return outcomes


def _apply_parked(db: Database, decoder: EventDecoder, tables: TableSet, aggregate: UUID) -> int:
    handlers = RowHandlers()
    changes = []
    ids = [p.notification_id for p in list_parked(db, tables, aggregate)]
    for nid in ids:
        row = notification(db, nid)
        if row is None:
            raise LookupError(f"parked notification {nid} is not in the event store")
        change = handlers.changes(decoder.decode(row))
        if change is not None:
            change.position = nid
            changes.append(change)
    write_changes(db, tables, changes)
    record_applied(db, tables, ids)
    db.executemany(
        f'DELETE FROM "{tables.dead_letters}" WHERE notification_id = %s',
        [(nid,) for nid in ids],
    )
    return len(ids)
