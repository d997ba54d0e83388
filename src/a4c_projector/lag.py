# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""How far behind is a projection: position, head, and the age of what it has not applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from a4c_projector.db import Database
from a4c_projector.source import Notification, decode, head
from a4c_projector.tables import LIVE, TableSet
from a4c_projector.writer import read_position


@dataclass(frozen=True)
class Lag:
    position: int
    head: int
    events: int  # committed events after the position
    seconds: float  # age of the oldest of them (0 when there are none)
    parked: int = 0  # events in the dead-letter table

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "head": self.head,
            "lag_events": self.events,
            "lag_seconds": round(self.seconds, 3),
            "parked": self.parked,
        }


def measure(db: Database, mapper: Mapper[Any], projection: str, tables: TableSet = LIVE) -> Lag:
    table = db.location.qualified_events_table
    column = "notification_id" if db.dialect == "postgres" else "rowid"
    position = read_position(db, projection)
    top = head(db)
    count = int(db.execute(f"SELECT count(*) FROM {table} WHERE {column} > %s", (position,))[0][0])
    seconds = 0.0
    if count:
        row = db.execute(
            f"SELECT {column}, originator_id, originator_version, topic, state FROM {table} "
            f"WHERE {column} > %s ORDER BY {column} LIMIT 1",
            (position,),
        )[0]
        try:
            oldest = decode(
                mapper, Notification(row[0], _uuid(row[1]), row[2], row[3], bytes(row[4]), None)
            )
            seconds = max(0.0, (datetime.now(UTC) - oldest.timestamp).total_seconds())
        except Exception:  # an undecodable event: its age is unknown, call it infinite
            seconds = float("inf")
    parked = int(db.execute(f'SELECT count(*) FROM "{tables.dead_letters}"')[0][0])
    return Lag(position=position, head=top, events=count, seconds=seconds, parked=parked)


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
