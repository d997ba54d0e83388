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

from collections.abc import Callable
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


def claim_position(db: Database, projection: str) -> Callable[[], int]:
    """Send the lock of the projection's tracking row (held until the transaction ends);
    call what it returns for the position (the lock is granted by then).

    Sent, not waited for, so a batch's other questions travel with it in one round trip
    (:meth:`~a4c_projector.dialects.base.Database.pipeline`). Call inside a transaction
    (SQLite's ``BEGIN IMMEDIATE`` already admits one writer).
    """
    claimed = db.execute_later(
        f"SELECT position FROM {TRACKING_TABLE} WHERE projection = %s{db.row_lock}",
        (projection,),
    )

    def position() -> int:
        rows = claimed()
        return int(rows[0][0]) if rows else 0

    return position


def advance_position(db: Database, projection: str, old: int, new: int) -> Callable[[], None]:
    """Send the move of the position; call what it returns before committing: it raises
    if the position was no longer ``old`` (someone else is writing).

    Sent, not waited for, so it travels with the batch's writes in one round trip
    (:meth:`~a4c_projector.dialects.base.Database.pipeline`); the check reads its result.
    """
    moved = db.execute_later(
        f"UPDATE {TRACKING_TABLE} SET position = %s, updated_at = %s "
        "WHERE projection = %s AND position = %s RETURNING position",
        (new, datetime.now(UTC), projection, old),
    )

    def check() -> None:
        if not moved():
            raise TrackingConflict(
                f"projection {projection!r} moved away from position {old}: "
                "another runner is active"
            )

    return check


def forget_projection(db: Database, projection: str) -> None:
    """Remove a projection's row (a rebuild's own, before it starts and once swapped)."""
    db.execute(f"DELETE FROM {TRACKING_TABLE} WHERE projection = %s", (projection,))
