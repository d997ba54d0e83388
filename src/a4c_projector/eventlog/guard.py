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
   "create" race) or by a writer still running. After ``grace`` seconds the projector
   takes a *fence* (:class:`Fence`, one statement) and passes the gap on proof (a) or,
   only where (a) cannot be had, on proof (b):

   a. **The writers are gone.** The id was drawn (``nextval``, the column default) by
      an ``INSERT`` into the events table, which holds a lock on that table from before
      it draws until its transaction ends; and it was drawn before the visible row above
      it, so before the fetch that saw the gap. So the transaction holding the gap, if
      still running, is among those the fence lists as locking the events table. Once
      none of them is running any more — observed *before* the snapshot of a later
      fetch, so that their commits are in it — a still-missing id can never appear.
      This waits only for writers of this event store.
   b. **The xid horizon is past the fence** — only when the fence could not list the
      writers (a prepared transaction holds the lock: it has no virtual transaction
      to watch). The fence also takes a fresh xid ``F``; once ``pg_snapshot_xmin(S) >
      F`` every transaction that had an xid at fence time has finished. This is weaker
      than (a): a writer gets its xid only at its first row write (or when its
      ``nextval`` happens to be one the sequence WAL-logs, one draw in 32), so a
      writer stalled between ``nextval`` and its row — a ``BEFORE INSERT`` trigger, a
      throttled container, a lock wait — may have no xid at fence time, and the
      horizon passes it while it can still commit the id. Where (a) can be had it is
      therefore the only proof (``tests/projector/test_stalled_writers.py``). xids are
      cluster-wide, so (b) also waits for every writing transaction on the server.

Both proofs need ids drawn in time order: a sequence with ``CACHE`` above 1 hands each
session a block of ids of its own, so the projector refuses to start on one
(:func:`a4c_projector.eventlog.source.check_ids_drawn_in_order`), and checks again with every
fence (an ``ALTER SEQUENCE`` while it runs would otherwise go unnoticed).

The grace must be above zero. Under concurrent lock-free writers most gaps are commits
a few milliseconds apart and fill by themselves; the grace lets them, instead of taking
a fence (an xid burnt, the lock table read) for each one.

The test ``tests/projector/test_no_skip.py`` drives slow concurrent writers in both
insert modes and shows that the naive rule does skip, and that a long writer elsewhere
on the server does not hold a gap up.

SQLite has one writer at a time and assigns rowids at commit order, so rows read from
it carry no xid and are always safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FetchedRow:
    notification_id: int
    xid: int | None  # None: the store orders commits itself (SQLite)


@dataclass(frozen=True)
class Fence:
    """Taken once a gap's grace has run out."""

    xid: int  # a fresh xid
    # The virtual transaction ids then locking the events table for writing; None when
    # one of them cannot be watched: only then may proof (b) pass the gap.
    writers: frozenset[str] | None


@dataclass
class GapState:
    first_seen: float
    fence: Fence | None = None
    writers_gone: bool = False  # seen before the snapshot of the rows being judged

    @property
    def unseen_writers(self) -> frozenset[str] | None:
        """The fence's writers, while their end is still to be seen."""
        if self.fence is None or self.fence.writers is None or self.writers_gone:
            return None
        return self.fence.writers


# Seconds a gap gets to fill by itself before a fence is taken.
DEFAULT_GAP_GRACE = 0.25


@dataclass
class GapGuard:
    """Remembers the gaps it has seen between calls; ``grace`` in seconds."""

    grace: float = DEFAULT_GAP_GRACE
    gaps: dict[int, GapState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check_grace(self.grace)

    @staticmethod
    def check_grace(grace: float) -> None:
        if not grace > 0:
            raise ValueError(f"the gap grace must be above 0 seconds, not {grace}")

    def safe_prefix(
        self,
        rows: Sequence[FetchedRow],
        position: int,
        horizon: int | None,
        now: float,
        take_fence: Callable[[], Fence],
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
        self, start: int, horizon: int, now: float, take_fence: Callable[[], Fence]
    ) -> bool:
        state = self.gaps.setdefault(start, GapState(first_seen=now))
        if state.fence is None:
            if now - state.first_seen < self.grace:
                return False
            state.fence = take_fence()
        if state.fence.writers is not None:
            return state.writers_gone  # proof (a): the listed writers' end, nothing else
        return horizon > state.fence.xid  # proof (b), only for writers (a) cannot watch

    @property
    def watching(self) -> bool:
        """Some fence's writers are still to be seen gone (ask before the next fetch)."""
        return any(state.unseen_writers is not None for state in self.gaps.values())

    def writers_to_watch(self) -> frozenset[str]:
        return frozenset().union(*(s.unseen_writers or () for s in self.gaps.values()))

    def observe_writers(self, running: Set[str]) -> None:
        """``running``: those of :meth:`writers_to_watch` still running, read *before*
        the snapshot of the next fetch (so the rows they committed are in it)."""
        for state in self.gaps.values():
            unseen = state.unseen_writers
            if unseen is not None and not unseen & running:
                state.writers_gone = True

    @property
    def waiting_on_gap(self) -> bool:
        return bool(self.gaps)
