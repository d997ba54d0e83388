"""The no-skip guard: which fetched rows may the projection move past?

Rows contiguous after the position are safe. A gap holds the batch until it is proven
permanent after the grace (above 0): the event store's writers listed by a fence have all
ended — a prepared transaction writing the table counts as one still running — or, only
where they cannot be listed, the xid horizon has passed the fence. Both need ids drawn in
time order (sequence ``CACHE 1``). SQLite rows are always safe. Why this is sound:
docs/design/no-skip-guard.md.

The model check (``tests/projector/gapmodel.py``) drives this class through every
interleaving of writers and replicas; its steps stand for these code steps (the table in
the design page's section "The model" says more):

- writer draws id / writes row / prepares / commits or rolls back: an ``INSERT`` into the
  events table (lock, ``nextval``, tuple), ``PREPARE TRANSACTION``, ``COMMIT [PREPARED]``;
- replica claims position: ``claim_position`` (``SELECT ... FOR UPDATE``);
- replica observes writers: ``source.running_transactions`` then :meth:`GapGuard.observe_writers`;
- replica fetches: ``source.read_log`` (one snapshot, its xmin horizon);
- replica judges (the grace runs out): :meth:`GapGuard.safe_prefix` with ``source.take_fence``;
- replica moves the checkpoint: ``advance_position`` (compare-and-set) and ``COMMIT``.
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

    def observe_writers(self, running: Set[str], *, prepared: bool) -> None:
        """``running``: those of :meth:`writers_to_watch` still running, read *before*
        the snapshot of the next fetch (so the rows they committed are in it).

        ``prepared``: a prepared transaction holds a write lock on the events table (read
        in the same look at the locks). ``PREPARE TRANSACTION`` ends a writer's session
        transaction while ``COMMIT PREPARED`` can still commit the id it drew, and which
        watched writer became which prepared transaction cannot be told: while any
        exists, no fence's writers count as gone."""
        if prepared:
            return
        for state in self.gaps.values():
            unseen = state.unseen_writers
            if unseen is not None and not unseen & running:
                state.writers_gone = True

    @property
    def waiting_on_gap(self) -> bool:
        return bool(self.gaps)
