"""One active replica per projection: a PostgreSQL session advisory lock.

The lock lives on a dedicated connection; it is released by PostgreSQL the moment that
session ends (process killed, connection cut), so a standby that retries every second
takes over within seconds. The tracking update's ``position = old`` check is a second
fence should two runners ever overlap.
"""

from __future__ import annotations

from a4c_projector.db import Database, Location

LOCK_NAMESPACE = "a4c_projector:"


class ProjectionLock:
    def __init__(self, location: Location, projection: str) -> None:
        self.location = location
        self.key = LOCK_NAMESPACE + projection
        self._db: Database | None = None

    def try_acquire(self) -> bool:
        if self.location.dialect != "postgres":
            return True  # SQLite: a single process; nothing to coordinate
        if self._db is None:
            self._db = self.location.connect(autocommit=True)
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
