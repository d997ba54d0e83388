"""The projector's live lag, sampled from outside: how long the oldest unapplied event
has been committed, to a sampling period's precision.

Every ``period`` the probe reads the event store's head and the projection's position
(one statement, through the multi-host conninfo, so it follows a failover) and keeps
when each head was first seen. The lag now is the age of the first sighting of the
oldest event the projection has not applied. A fault's recovery is the first moment
after it when the projection has passed the head seen at the fault and the lag is
under the bound again, having applied an event committed after the fault.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, fields

import psycopg

from a4c_projector.dialects.location import Location
from a4c_projector.readmodel.tracking import DEFAULT_PROJECTION, TRACKING_TABLE

RECOVERED_LAG_SECONDS = 1.0
# The events table the soak's processes use: the location's default.
EVENTS_TABLE = next(f.default for f in fields(Location) if f.name == "events_table")


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    head: int
    position: int
    lag: float


class LagProbe:
    def __init__(self, conninfo: str, *, period: float = 0.1) -> None:
        self.conninfo = conninfo
        self.period = period
        self.samples: deque[Sample] = deque(maxlen=100_000)
        self.errors = 0
        self._first_seen: deque[tuple[int, float]] = deque()  # (head, first seen at)
        self._sql = (
            f"SELECT (SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}), "
            f"(SELECT coalesce(max(position), 0) FROM {TRACKING_TABLE} WHERE projection = %s)"
        )

    async def run(self, stop: asyncio.Event) -> None:
        conn: psycopg.AsyncConnection[tuple[int, int]] | None = None
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True, connect_timeout=2
                    )
                cursor = await conn.execute(self._sql, (DEFAULT_PROJECTION,))
                row = await cursor.fetchone()
                assert row is not None
                self._record(int(row[0]), int(row[1]))
            except (psycopg.Error, OSError):
                self.errors += 1
                if conn is not None:
                    await conn.close()
                conn = None
            await asyncio.sleep(self.period)
        if conn is not None:
            await conn.close()

    def _record(self, head: int, position: int) -> None:
        now = time.monotonic()
        if not self._first_seen or head > self._first_seen[-1][0]:
            self._first_seen.append((head, now))
        while len(self._first_seen) > 1 and self._first_seen[0][0] <= position:
            self._first_seen.popleft()
        oldest = self._first_seen[0]
        lag = 0.0 if position >= oldest[0] else now - oldest[1]
        self.samples.append(Sample(now, head, position, lag))

    def head_now(self) -> int:
        return self.samples[-1].head if self.samples else 0

    def recovered_at(self, since: float, head: int) -> float | None:
        """The first sample after ``since`` that applied an event written after ``head``
        (the pipeline works end to end again) with the lag under the bound."""
        for sample in self.samples:
            if sample.at >= since and sample.position > head and sample.lag < RECOVERED_LAG_SECONDS:
                return sample.at
        return None

    async def wait_recovered(self, since: float, head: int, within: float) -> float | None:
        """Seconds from ``since`` until recovered, None if not ``within`` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            at = self.recovered_at(since, head)
            if at is not None:
                return at - since
            await asyncio.sleep(self.period)
        return None

    async def wait_caught_up(self, within: float) -> bool:
        """Until a fresh sample shows the projection at the store's head (False: not
        ``within`` seconds)."""
        since = time.monotonic()
        deadline = since + within
        while time.monotonic() < deadline:
            last = self.samples[-1] if self.samples else None
            if last is not None and last.at > since and last.position >= last.head:
                return True
            await asyncio.sleep(self.period)
        return False

    def max_lag(self) -> float:
        return max((s.lag for s in self.samples), default=0.0)
