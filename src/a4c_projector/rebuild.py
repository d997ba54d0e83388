# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""Rebuild without downtime: fill a fresh table set, verify it, swap names atomically.

1. Fresh ``*__rebuild`` tables are projected from position 0 (tracking row
   ``<projection>__rebuild``) while the live tables keep serving reads and the live
   runner keeps applying; the rebuild never passes the live position.
2. In one transaction: lock the live tables (the live runner waits at its next write),
   bring the rebuild exactly to the live position, compare every row of both sets
   (all columns but ``updated_at``), then drop the live set and rename the rebuild set
   (tables and indexes) to the live names: :func:`a4c_projector.tables.replace_tables`.
   Readers see the old model until the commit and the new one after it, never a
   half-built one. (``__retired`` tables are left only by older versions; they are
   dropped at the start.)

A difference is reported and, unless ``force``, aborts the swap (the fresh tables are
kept for inspection): a rebuild that disagrees with the live model means one of them is
wrong, and an operator should decide which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Mapper

from a4c_projector.db import Database, Location
from a4c_projector.projector import DEFAULT_PROJECTION, Projector
from a4c_projector.source import head
from a4c_projector.tables import (
    LIVE,
    REBUILD_SUFFIX,
    RETIRED_SUFFIX,
    TRACKING_TABLE,
    TableSet,
    drop_tables,
    ensure_schema,
    replace_tables,
    snapshot_rows,
)
from a4c_projector.writer import read_position

Progress = Callable[[int, int], None]  # (position, head)


class RebuildMismatch(Exception):
    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        shown = "; ".join(differences[:10])
        super().__init__(
            f"rebuilt tables differ from the live ones in {len(differences)} rows: {shown}"
        )


@dataclass
class RebuildReport:
    position: int
    events: int
    differences: list[str] = field(default_factory=list)
    swapped: bool = False


def compare(db: Database, live: TableSet, fresh: TableSet) -> list[str]:
    old, new = snapshot_rows(db, live), snapshot_rows(db, fresh)
    differences: list[str] = []
    for kind in old:
        for key in sorted(old[kind].keys() | new[kind].keys()):
            if old[kind].get(key) != new[kind].get(key):
                differences.append(f"{kind} {key}")
    return differences


def rebuild(
    location: Location,
    mapper: Mapper[Any],
    *,
    projection: str = DEFAULT_PROJECTION,
    batch_size: int = 5000,
    force: bool = False,
    progress: Progress | None = None,
) -> RebuildReport:
    fresh = TableSet(REBUILD_SUFFIX)
    retired = TableSet(RETIRED_SUFFIX)
    fresh_projection = projection + REBUILD_SUFFIX
    with location.connect() as setup:
        ensure_schema(setup, LIVE)
        drop_tables(setup, fresh)
        drop_tables(setup, retired)
        ensure_schema(setup, fresh)
        with setup.transaction():
            setup.execute(
                f"DELETE FROM {TRACKING_TABLE} WHERE projection = %s", (fresh_projection,)
            )
    builder = Projector(
        location, mapper, projection=fresh_projection, tables=fresh, batch_size=batch_size
    )
    events = 0
    try:
        db = builder.db
        while True:  # phase 1: alongside the live runner, never past its position
            with db.transaction():
                target, top = read_position(db, projection), head(db)
            result = builder.run_batch(stop=target)
            events += result.size
            if progress is not None:
                progress(result.position, top)
            if result.position >= target or result.size == 0:
                break
        with db.transaction():  # phase 2: catch up to the frozen live position, check, swap
            if db.dialect == "postgres":
                names = ", ".join(f'"{t}"' for t in LIVE.all)
                db.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            target = read_position(db, projection)
            while True:
                result = builder.run_batch(stop=target)
                events += result.size
                if result.position >= target or result.size == 0:
                    break
            if result.position != target:
                raise RuntimeError(
                    f"rebuild reached {result.position}, not the live position {target}"
                )
            differences = compare(db, LIVE, fresh)
            report = RebuildReport(position=target, events=events, differences=differences)
            if differences and not force:
                raise RebuildMismatch(differences)
            replace_tables(db, LIVE, fresh)
            db.execute(f"DELETE FROM {TRACKING_TABLE} WHERE projection = %s", (fresh_projection,))
            report.swapped = True
        if progress is not None:
            progress(target, target)
        return report
    finally:
        builder.close()
