"""The no-skip guard: which fetched rows may the projection move past?

The problem. In eventsourcing's lock-free insert mode (``POSTGRES_ENABLE_DB_FUNCTIONS=y``,
our production default) writers draw notification ids from a sequence and commit in any
order. A reader that sees ids 1, 2, 4 cannot tell whether 3 was rolled back or belongs to
a transaction still running; a reader that advances its position to 4 ("max id seen")
skips 3 for ever when it commits.

The rule (applied to rows read with one statement, so one snapshot ``S``):

1. **xmin horizon.** A row is *safe* only when the transaction that wrote it is older
   than ``pg_snapshot_xmin(S)``: every transaction below that horizon has finished,
   so no transaction that started before this writer can still be inserting. Rows are
   taken in id order and the batch stops at the first row that is not safe. (``xmin``
   is the 32-bit xid of the row; the horizon is a 64-bit ``xid8``: they are compared
   modulo 2**32 as PostgreSQL itself does, with frozen xids always in the past.)
2. **Gaps.** An id missing below a safe row is held either by an aborted transaction
   (a permanent gap: e.g. a lost "create" race) or by a writer that drew the id from
   the sequence *just before* being assigned its xid (the sequence is read before the
   tuple's xid exists, so such a writer is invisible to rule 1 for a moment). The batch
   stops at the gap. After ``grace`` seconds the projector takes a *fence*: a fresh
   xid ``F`` (``pg_current_xact_id()`` in its own transaction); any writer holding the
   gap has an xid by then, smaller than ``F``. Once ``pg_snapshot_xmin > F`` every such
   writer has finished and a still-missing id can never appear: the gap is passed.

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

XID_MODULUS = 1 << 32
FROZEN_XIDS = (1, 2)  # BootstrapTransactionId, FrozenTransactionId


def xid_precedes(row_xid: int, horizon_xid8: int) -> bool:
    """Is the 32-bit ``row_xid`` older than the 64-bit horizon (modulo-2**32 order)?"""
    if row_xid in FROZEN_XIDS:
        return True
    distance = (horizon_xid8 % XID_MODULUS - row_xid) % XID_MODULUS
    return 0 < distance < (1 << 31)


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
            if row.xid is None or horizon is None:
                expected = row.notification_id + 1
                continue
            if row.notification_id != expected and not self._gap_closed(
                expected, horizon, now, take_fence
            ):
                return index
            if not xid_precedes(row.xid, horizon):
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
