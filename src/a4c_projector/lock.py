"""Who may write a projection: one replica at a time, one transaction at a time.

* **Replicas** (:class:`ProjectionLock`): a PostgreSQL session advisory lock on a
  dedicated connection. PostgreSQL releases it the moment that session ends (process
  killed, connection cut), so a standby that retries every second takes over within
  seconds.
* **Transactions** (:func:`claim_position`): every transaction that writes a
  projection's tables — a batch, or a dead-letter retry run from another process while
  the daemon is live — first locks the projection's tracking row. They run one after
  another, and each one decides (e.g. "is an earlier event of this aggregate parked?")
  on what the previous one committed. The tracking update's ``position = old`` check in
  the writer is a further fence should two runners ever overlap.
"""

from __future__ import annotations

from a4c_projector.db import Database, Location
from a4c_projector.tables import TRACKING_TABLE

LOCK_NAMESPACE = "a4c_projector:"


def claim_position(db: Database, projection: str) -> int:
    """Lock the projection's tracking row until the transaction ends; its position.

    Call inside a transaction. SQLite needs no row lock: ``BEGIN IMMEDIATE`` already
    admits one writer at a time.
    """
    lock = " FOR UPDATE" if db.dialect == "postgres" else ""
    rows = db.execute(
        f"SELECT position FROM {TRACKING_TABLE} WHERE projection = %s{lock}",  # noqa: S608
        (projection,),
    )
    return int(rows[0][0]) if rows else 0


class ProjectionLock:
    def __init__(self, location: Location, projection: str) -> None:
        self.location = location
        # Advisory locks are per database, not per schema: the key names the store too,
        # or deployments in two schemas of one database would stand by for each other.
        self.key = f"{LOCK_NAMESPACE}{location.schema}.{location.events_table}:{projection}"
        self._db: Database | None = None

    def try_acquire(self) -> bool:
        if self.location.dialect != "postgres":
            return True  # SQLite: a single process; nothing to coordinate
        if self._db is None:
            self._db = self.location.connect(autocommit=True, purpose="lock")
        rows = self._db.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self.key,))
        if not rows[0][0]:
            self.release()
            return False
        return True

    def check(self) -> None:
        """Raise if the lock's session is gone (then the lock is gone too)."""
        if self._db is not None:
            self._db.execute("SELECT 1")

    def release(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            finally:
                self._db = None
