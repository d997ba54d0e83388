"""The gap rule, model-checked: every interleaving of writers and replicas around the
real :class:`~a4c_projector.eventlog.guard.GapGuard` keeps every committed event, moves
the checkpoint only forward and lets one replica at a time into a batch; the 0.2.0 rule
(the xid horizon alone) and a store without the tracking row's lock each fail, so the
checks are not vacuous. The model: tests/projector/gapmodel.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.projector.gapmodel import Config, HorizonOnlyGuard, Result, explore, readable


def report(result: Result) -> str:
    counts = f"{result.states} states, {result.transitions} transitions"
    return counts if result.violation is None else f"{counts}\n{readable(result.violation)}"


@pytest.mark.parametrize(
    "config",
    [
        # Writers may get an xid already at nextval; no replica fails.
        Config(writers=3, replicas=2, faults=0),
        # Lease expiries (the active's lock session cut: a zombie) and kills, mid-batch or not.
        Config(writers=2, replicas=2, faults=2),
    ],
    ids=["3 writers, 2 replicas", "2 writers, 2 replicas, two faults"],
)
def test_every_interleaving_keeps_every_committed_event(config: Config) -> None:
    result = explore(config)
    print(report(result))  # the state counts, with -s
    assert result.violation is None, report(result)


def test_the_rule_of_0_2_0_passes_over_a_stalled_writers_event() -> None:
    """A writer stalled between nextval and its row has no xid at fence time: the
    horizon passes the fence while it can still commit the id."""
    result = explore(Config(writers=2, replicas=2, faults=0, guard=HorizonOnlyGuard))
    assert result.violation is not None, f"no counterexample: {report(result)}"
    assert "passed over" in result.violation.name, report(result)
    assert any("draws id 1 (no xid yet)" in step for step in result.violation.trace)


def test_without_the_tracking_rows_lock_two_replicas_write_and_one_moves_it_back() -> None:
    unlocked = Config(writers=2, tracking_row_lock=False, compare_and_set=False)
    result = explore(unlocked)
    assert result.violation is not None, f"no counterexample: {report(result)}"
    assert "at once" in result.violation.name, report(result)
    result = explore(replace(unlocked, check_one_at_a_time=False))
    assert result.violation is not None, f"no counterexample: {report(result)}"
    assert "backward" in result.violation.name, report(result)


def test_a_replica_that_lost_its_lock_can_still_advance_but_only_alone() -> None:
    """The advisory lock alone does not stop a zombie (it checks it between batches);
    the tracking row's lock and the compare-and-set keep its batch serial and correct."""
    result = explore(Config(writers=2, replicas=2, faults=1, kills=False))
    assert result.violation is None, report(result)
    assert result.zombie_advance is not None


def test_writers_that_prepare_keep_their_gap_until_commit_or_rollback_prepared() -> None:
    """PREPARE TRANSACTION ends a writer's virtual transaction (its locks shown as
    "-1/<xid>") while COMMIT PREPARED can still commit its id: no fence's writers count
    as gone while a prepared transaction holds the events table's lock."""
    result = explore(Config(writers=2, replicas=2, faults=0, prepared=True))
    print(report(result))
    assert result.violation is None, report(result)


def test_a_rule_blind_to_prepared_writers_passes_over_one() -> None:
    """The rule before the fix: a writer that prepares after the fence listed it is
    taken for gone. Needs max_prepared_transactions above 0 (PostgreSQL's default is
    0; eventsourcing never prepares). Real servers: test_prepared_writers.py."""
    blind = Config(writers=2, replicas=1, faults=0, prepared=True, observe_prepared=False)
    result = explore(replace(blind, xid_at_draw=False))
    assert result.violation is not None, f"no counterexample: {report(result)}"
    assert "passed over" in result.violation.name, report(result)
    assert any("prepares" in step for step in result.violation.trace), report(result)
