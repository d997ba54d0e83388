# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""Completeness audit: was every committed notification up to the position applied?

The projector logs the ids it applies as runs of consecutive ids (``applied_ranges``)
and each parked id in ``dead_letters``, in the batch's own transaction, so the audit is
exact: any committed id ≤ position that no run covers and that is not parked was
skipped. A run never bridges an id the batch did not apply, so a late commit below the
position cannot hide inside one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from a4c_projector.dialects.base import Database
from a4c_projector.readmodel.tables import LIVE, TableSet
from a4c_projector.readmodel.tracking import read_position


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
    column = db.id_column
    # The run that could cover an id is the one starting at or before it: one index
    # probe per event, however many runs the log has.
    covered = (
        f'coalesce((SELECT a.last_id FROM "{tables.applied}" a WHERE a.first_id <= e.{column} '
        f"ORDER BY a.first_id DESC LIMIT 1), -1) >= e.{column}"
    )
    parked = (
        f'EXISTS (SELECT 1 FROM "{tables.dead_letters}" d WHERE d.notification_id = e.{column})'
    )
    state = f"CASE WHEN {covered} THEN 'applied' WHEN {parked} THEN 'parked' ELSE 'missing' END"
    with db.transaction():
        position = read_position(db, projection)
        # One statement (one snapshot): a count per state, and each missing event itself.
        rows = db.execute(
            "SELECT state, count(*), "
            "CASE WHEN state = 'missing' THEN nid END AS missing_id, "
            "CASE WHEN state = 'missing' THEN topic END, "
            "CASE WHEN state = 'missing' THEN originator_id END "
            f"FROM (SELECT e.{column} AS nid, e.topic, e.originator_id, {state} AS state "
            f"FROM {events} e WHERE e.{column} <= %s) AS checked "
            "GROUP BY 1, 3, 4, 5 ORDER BY 3",
            (position,),
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[0]] = counts.get(r[0], 0) + int(r[1])
    return AuditReport(
        position=position,
        checked=sum(counts.values()),
        applied=counts.get("applied", 0),
        parked=counts.get("parked", 0),
        missing=[MissingEvent(int(r[2]), str(r[3]), str(r[4])) for r in rows if r[0] == "missing"],
    )
