# ruff: noqa: S608 - the table name comes from the schema; values are bound
"""A projection's position in the notification log: its row in ``projector_tracking``.

The position is written in the same transaction as the read-model changes of a batch
(exactly once). Every transaction that writes a projection's tables — a batch, or a
dead-letter retry run from another process while the daemon is live — first claims the
projection's row (:func:`claim_position`). They run one after another, and each one
decides (e.g. "is an earlier event of this aggregate parked?") on what the previous one
committed. :func:`advance_position`'s ``position = old`` check is a further fence should
two runners ever overlap.
"""

from __future__ import annotations

from datetime import UTC, datetime

from a4c_projector.dialects.base import Database
from a4c_projector.schema import TRACKING

TRACKING_TABLE = TRACKING.name
DEFAULT_PROJECTION = "a4c"


class TrackingConflict(Exception):
    """Another runner moved this projection's position: this runner is not the owner."""


def ensure_tracking(db: Database, projection: str) -> None:
    db.execute(
        f"INSERT INTO {TRACKING_TABLE} (projection, position) VALUES (%s, 0) "
        "ON CONFLICT (projection) DO NOTHING",
        (projection,),
    )


def read_position(db: Database, projection: str) -> int:
    rows = db.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE projection = %s", (projection,))
    return int(rows[0][0]) if rows else 0


def claim_position(db: Database, projection: str) -> int:
    """Lock the projection's tracking row until the transaction ends; its position.

    Call inside a transaction (SQLite's ``BEGIN IMMEDIATE`` already admits one writer).
    """
    rows = db.execute(
        f"SELECT position FROM {TRACKING_TABLE} WHERE projection = %s{db.row_lock}",
        (projection,),
    )
    return int(rows[0][0]) if rows else 0


def advance_position(db: Database, projection: str, old: int, new: int) -> None:
    """Move the position; fails if it is no longer ``old`` (someone else is writing)."""
    rows = db.execute(
        f"UPDATE {TRACKING_TABLE} SET position = %s, updated_at = %s "
        "WHERE projection = %s AND position = %s RETURNING position",
        (new, datetime.now(UTC), projection, old),
    )
    if not rows:
        raise TrackingConflict(
            f"projection {projection!r} moved away from position {old}: another runner is active"
        )


def forget_projection(db: Database, projection: str) -> None:
    """Remove a projection's row (a rebuild's own, before it starts and once swapped)."""
    db.execute(f"DELETE FROM {TRACKING_TABLE} WHERE projection = %s", (projection,))
