# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""Completeness audit: was every committed notification up to the position applied?

The projector writes each applied notification id to ``applied_events`` and each parked
one to ``dead_letters`` in the batch's own transaction, so the audit is an exact set
difference against the event store: any id ≤ position in neither table was skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from a4c_projector.db import Database
from a4c_projector.tables import LIVE, TableSet
from a4c_projector.writer import read_position


@dataclass(frozen=True)
class MissingEvent:
    notification_id: int
    topic: str
    originator_id: str


@dataclass
class AuditReport:
    position: int
    checked: int
    applied: int
    parked: int
    missing: list[MissingEvent] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def audit(db: Database, projection: str, tables: TableSet = LIVE) -> AuditReport:
    events = db.location.qualified_events_table
    column = "notification_id" if db.dialect == "postgres" else "rowid"
    with db.transaction():
        position = read_position(db, projection)
        checked = int(
            db.execute(f"SELECT count(*) FROM {events} WHERE {column} <= %s", (position,))[0][0]
        )
        applied = int(db.execute(f'SELECT count(*) FROM "{tables.applied}"')[0][0])
        parked = int(db.execute(f'SELECT count(*) FROM "{tables.dead_letters}"')[0][0])
        rows = db.execute(
            f"SELECT e.{column}, e.topic, e.originator_id FROM {events} e "
            f"WHERE e.{column} <= %s "
            f'AND NOT EXISTS (SELECT 1 FROM "{tables.applied}" a '
            f"WHERE a.notification_id = e.{column}) "
            f'AND NOT EXISTS (SELECT 1 FROM "{tables.dead_letters}" d '
            f"WHERE d.notification_id = e.{column}) "
            f"ORDER BY e.{column}",
            (position,),
        )
    return AuditReport(
        position=position,
        checked=checked,
        applied=applied,
        parked=parked,
        missing=[MissingEvent(int(r[0]), str(r[1]), str(r[2])) for r in rows],
    )
