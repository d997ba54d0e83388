"""The no-skip guard: which fetched rows may the projection move past?

The problem. In eventsourcing's lock-free insert mode (``POSTGRES_ENABLE_DB_FUNCTIONS=y``,
our production default) writers draw notification ids from a sequence and commit in any
order. A reader that sees ids 1, 2, 4 cannot tell whether 3 was rolled back or belongs to
a transaction still running; a reader that advances its position to 4 ("max id seen")
skips 3 for ever when it commits.

The rule (applied to rows read with one statement, so one snapshot ``S``, in id order,
starting after the projection's position ``p``):

1. **Contiguous rows are safe.** If ids ``p+1 .. k`` are all visible in ``S``, they are
   all committed, and no id at or below ``k`` can appear later (ids are unique): nothing
   can be skipped by applying them, whatever other transactions are still running. (An
   earlier version also required each row's writer to be below the snapshot's xmin
   horizon; that adds no safety and stalls the projection behind *any* long write
   transaction in the cluster, since xids and snapshots are cluster-wide.)
2. **A gap stops the batch until it is proven permanent.** An id missing below a
   visible row is held either by an aborted transaction (a permanent gap: e.g. a lost
   "create" race) or by a writer still running — possibly one that drew the id from the
   sequence *just before* being assigned its xid (the sequence is read before the
   tuple's xid exists). After ``grace`` seconds the projector takes a *fence*: a fresh
   xid ``F`` (``pg_current_xact_id()`` in its own transaction); any writer holding the
   gap has an xid by then, smaller than ``F``. Once ``pg_snapshot_xmin(S) > F`` every
   such writer has finished and a still-missing id can never appear: the gap is passed.

The residual assumption is that no backend stalls for longer than ``grace`` between
``nextval`` and the first tuple write of the same INSERT statement. The test
``tests/projector/test_no_skip.py`` drives slow concurrent writers in both insert modes
and shows that the naive rule does skip.

SQLite has one writer at a time and assigns rowids at commit order, so rows read from
it carry no xid and are always safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FetchedRow:
    notification_id: int
    xid: int | None  # None: the store orders commits itself (SQLite)


@dataclass
class GapState:
    first_seen: float
    fence: int | None = None  # an xid taken after the grace period


@dataclass
class GapGuard:
    """Remembers the gaps it has seen between calls; ``grace`` in seconds."""

    grace: float = 0.25
    gaps: dict[int, GapState] = field(default_factory=dict)

    def safe_prefix(
        self,
        rows: Sequence[FetchedRow],
        position: int,
        horizon: int | None,
        now: float,
        take_fence: Callable[[], int],
    ) -> int:
        """How many leading ``rows`` (ordered by id, all > ``position``) are safe to apply."""
        self.gaps = {start: s for start, s in self.gaps.items() if start > position}
        expected = position + 1
        for index, row in enumerate(rows):
            gap = row.xid is not None and horizon is not None and row.notification_id != expected
            if gap and not self._gap_closed(expected, horizon or 0, now, take_fence):
                return index
            expected = row.notification_id + 1
        return len(rows)

    def _gap_closed(
        self, start: int, horizon: int, now: float, take_fence: Callable[[], int]
    ) -> bool:
        state = self.gaps.setdefault(start, GapState(first_seen=now))
        if state.fence is None:
            if now - state.first_seen < self.grace:
                return False
            state.fence = take_fence()
        return horizon > state.fence

    @property
    def waiting_on_gap(self) -> bool:
        return bool(self.gaps)
