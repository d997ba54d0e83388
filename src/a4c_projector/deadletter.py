# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""Parked events: list them, and retry them once the cause is fixed.

A retry takes an aggregate's parked events in version order and applies them like a
batch does (version-guarded upserts, applied log) in one transaction, removing them from
the dead-letter table. If any still fails, nothing of that aggregate changes.

A retry may run while the daemon is live (``a4c-projector dead-letter retry`` is another
process). Its transaction claims the projection's tracking row first, as every batch
does (:func:`a4c_projector.lock.claim_position`), and reads the parked events only
then. So a batch that parks a later event of the same aggregate commits either before
the retry (which then retries that event too) or after it (and then sees nothing parked
and applies the event in order): an aggregate is never left half retried with a later
event applied over a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from a4c_projector.db import Database
from a4c_projector.handlers import RowHandlers
from a4c_projector.lock import claim_position
from a4c_projector.projector import DEFAULT_PROJECTION
from a4c_projector.source import Notification, decode
from a4c_projector.tables import LIVE, TableSet
from a4c_projector.writer import record_applied, write_changes


@dataclass(frozen=True)
class ParkedEvent:
    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    error: str


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
    for aggregate in aggregates:
        try:
            with db.transaction():
                claim_position(db, projection)  # waits for a batch in flight
                applied = _apply_parked(db, mapper, tables, aggregate)
            outcomes.append(RetryOutcome(aggregate, applied, None))
        except Exception as exc:
            outcomes.append(RetryOutcome(aggregate, 0, f"{type(exc).__name__}: {exc}"))
    return outcomes


def _apply_parked(db: Database, mapper: Mapper[Any], tables: TableSet, aggregate: UUID) -> int:
    events = db.location.qualified_events_table
    column = "notification_id" if db.dialect == "postgres" else "rowid"
    handlers = RowHandlers()
    changes = []
    ids = [p.notification_id for p in list_parked(db, tables, aggregate)]
    for nid in ids:
        row = db.execute(
            f"SELECT {column}, originator_id, originator_version, topic, state "
            f"FROM {events} WHERE {column} = %s",
            (nid,),
        )[0]
        note = Notification(row[0], UUID(str(row[1])), row[2], row[3], bytes(row[4]), None)
        change = handlers.changes(decode(mapper, note))
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
