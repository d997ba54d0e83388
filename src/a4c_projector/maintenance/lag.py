# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""How far behind is a projection: position, head, and the age of what it has not applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Mapper

from a4c_projector.dialects.base import Database
from a4c_projector.eventlog.decoding import EventDecoder
from a4c_projector.eventlog.source import first_after, head
from a4c_projector.readmodel.deadletters import count_parked
from a4c_projector.readmodel.tables import LIVE, TableSet
from a4c_projector.readmodel.tracking import read_position


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
    column = db.id_column
    position = read_position(db, projection)
    top = head(db)
    count = int(db.execute(f"SELECT count(*) FROM {table} WHERE {column} > %s", (position,))[0][0])
    seconds = 0.0
    oldest = first_after(db, position) if count else None
    if oldest is not None:
        try:
            event = EventDecoder(mapper).decode(oldest)
            seconds = max(0.0, (datetime.now(UTC) - event.timestamp).total_seconds())
        except Exception:  # an undecodable event: its age is unknown, call it infinite
            seconds = float("inf")
    parked = count_parked(db, tables)
    return Lag(position=position, head=top, events=count, seconds=seconds, parked=parked)
