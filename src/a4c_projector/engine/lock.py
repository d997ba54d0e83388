"""Who may write a projection: one replica at a time.

A PostgreSQL session advisory lock on a dedicated connection. PostgreSQL releases it the
moment that session ends (process killed, connection cut), so a standby that retries
every second takes over within seconds. (One *transaction* at a time is the tracking
row's lock: :func:`a4c_projector.readmodel.tracking.claim_position`.)
"""

from __future__ import annotations

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location

LOCK_NAMESPACE = "a4c_projector:"


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
            self._db = connect(self.location, autocommit=True, purpose="lock")
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
