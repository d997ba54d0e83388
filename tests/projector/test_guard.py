"""The no-skip guard's rule on its own (pure logic): contiguous rows pass at once
whatever else runs; a gap holds the batch until a fence proves it permanent, by the
fence's writers being seen gone or, only when they could not be listed, by the horizon
passing the fence's xid."""

from __future__ import annotations

from a4c_projector.eventlog.guard import Fence, FetchedRow, GapGuard


def rows(*ids: int, xid: int | None = 100) -> list[FetchedRow]:
    return [FetchedRow(i, xid) for i in ids]


class Fences:
    def __init__(self, xid: int, writers: frozenset[str] | None = None) -> None:
        self.xid, self.writers, self.taken = xid, writers, 0

    def __call__(self) -> Fence:
        self.taken += 1
        return Fence(self.xid, self.writers)


def test_contiguous_rows_pass_even_below_an_old_horizon() -> None:
    fences = Fences(500)
    # Horizon 50: some transaction older than these rows' writer is still open somewhere.
    assert GapGuard().safe_prefix(rows(6, 7, 8), 5, 50, now=0.0, take_fence=fences) == 3
    assert fences.taken == 0


def test_a_gap_holds_until_grace_then_a_fence_the_horizon_has_passed() -> None:
    guard, fences = GapGuard(grace=0.25), Fences(500)
    batch = rows(6, 8, 9)  # 7 is missing
    assert guard.safe_prefix(batch, 5, 1000, now=0.0, take_fence=fences) == 1
    assert guard.safe_prefix(batch[1:], 6, 1000, now=0.1, take_fence=fences) == 0  # in grace
    assert fences.taken == 0 and guard.waiting_on_gap
    # After the grace a fence is taken; a horizon not beyond it keeps the gap open.
    assert guard.safe_prefix(batch[1:], 6, 400, now=0.3, take_fence=fences) == 0
    assert fences.taken == 1
    assert guard.safe_prefix(batch[1:], 6, 500, now=0.4, take_fence=fences) == 0
    # Every transaction below the fence has finished: 7 can never appear.
    assert guard.safe_prefix(batch[1:], 6, 501, now=0.5, take_fence=fences) == 2
    assert fences.taken == 1
    assert guard.safe_prefix(rows(10), 9, 501, now=0.6, take_fence=fences) == 1
    assert not guard.waiting_on_gap  # gaps behind the position are forgotten


def test_the_gap_filled_in_time_needs_no_fence() -> None:
    guard, fences = GapGuard(grace=0.25), Fences(500)
    assert guard.safe_prefix(rows(2, 3), 0, 1000, now=0.0, take_fence=fences) == 0
    assert guard.safe_prefix(rows(1, 2, 3), 0, 1000, now=0.1, take_fence=fences) == 3
    assert fences.taken == 0


def test_sqlite_rows_carry_no_xid_and_always_pass() -> None:
    fences = Fences(1)
    assert GapGuard().safe_prefix(rows(3, 9, xid=None), 0, None, 0.0, fences) == 2
    assert fences.taken == 0


def test_a_gap_passes_once_the_fences_writers_are_seen_gone_whatever_the_horizon() -> None:
    guard, fences = GapGuard(grace=0.25), Fences(500, frozenset({"3/10", "4/22"}))
    batch = rows(6, 8)  # 7 is missing; horizon 50: an old writer elsewhere stays open
    assert guard.safe_prefix(batch, 5, 50, now=0.0, take_fence=fences) == 1
    assert guard.safe_prefix(batch[1:], 6, 50, now=0.3, take_fence=fences) == 0
    assert fences.taken == 1 and guard.writers_to_watch() == {"3/10", "4/22"}
    guard.observe_writers({"4/22"}, prepared=False)  # one is still running
    assert guard.safe_prefix(batch[1:], 6, 50, now=0.4, take_fence=fences) == 0
    assert guard.writers_to_watch() == {"3/10", "4/22"}
    guard.observe_writers(set(), prepared=False)  # both gone before this fetch: 7 never appears
    assert not guard.watching
    assert guard.safe_prefix(batch[1:], 6, 50, now=0.5, take_fence=fences) == 1


def test_a_fence_with_no_writers_passes_at_the_next_fetch() -> None:
    guard, fences = GapGuard(grace=0.05), Fences(500, frozenset())
    assert guard.safe_prefix(rows(6, 8), 5, 50, now=0.0, take_fence=fences) == 1
    assert guard.safe_prefix(rows(8), 6, 50, now=0.1, take_fence=fences) == 0
    assert guard.watching and guard.writers_to_watch() == frozenset()
    guard.observe_writers(set(), prepared=False)
    assert guard.safe_prefix(rows(8), 6, 50, now=0.2, take_fence=fences) == 1


def test_a_listed_writer_still_running_holds_the_gap_whatever_the_horizon() -> None:
    """A writer stalled between ``nextval`` and its row write had no xid at fence time:
    the horizon passes the fence while it can still commit the missing id."""
    guard, fences = GapGuard(grace=0.05), Fences(500, frozenset({"3/10"}))
    assert guard.safe_prefix(rows(6, 8), 5, 1000, now=0.0, take_fence=fences) == 1
    for now in (0.1, 0.2, 5.0):
        guard.observe_writers({"3/10"}, prepared=False)
        assert guard.safe_prefix(rows(8), 6, 10_000, now=now, take_fence=fences) == 0
    guard.observe_writers(set(), prepared=False)
    assert guard.safe_prefix(rows(8), 6, 10_000, now=5.1, take_fence=fences) == 1
    assert fences.taken == 1


def test_writers_that_cannot_be_watched_leave_only_the_horizon() -> None:
    guard, fences = GapGuard(grace=0.05), Fences(500, None)  # no virtual transaction id
    assert guard.safe_prefix(rows(6, 8), 5, 50, now=0.0, take_fence=fences) == 1
    assert guard.safe_prefix(rows(8), 6, 50, now=0.1, take_fence=fences) == 0
    assert not guard.watching
    guard.observe_writers(set(), prepared=False)
    assert guard.safe_prefix(rows(8), 6, 50, now=0.2, take_fence=fences) == 0
    assert guard.safe_prefix(rows(8), 6, 501, now=0.3, take_fence=fences) == 1


def test_no_writer_counts_as_gone_while_a_prepared_transaction_writes_the_table() -> None:
    """PREPARE TRANSACTION ends the writer's session transaction, yet COMMIT PREPARED
    can still commit its id: its virtual transaction's end is not the writer's."""
    guard, fences = GapGuard(grace=0.05), Fences(500, frozenset({"3/10"}))
    assert guard.safe_prefix(rows(6, 8), 5, 50, now=0.0, take_fence=fences) == 1
    assert guard.safe_prefix(rows(8), 6, 50, now=0.1, take_fence=fences) == 0
    guard.observe_writers(set(), prepared=True)  # "3/10" prepared: its vxid lock is gone
    assert guard.watching
    assert guard.safe_prefix(rows(8), 6, 10_000, now=0.2, take_fence=fences) == 0
    guard.observe_writers(set(), prepared=False)  # COMMIT or ROLLBACK PREPARED
    assert guard.safe_prefix(rows(8), 6, 10_000, now=0.3, take_fence=fences) == 1
