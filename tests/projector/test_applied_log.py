"""The applied log: runs of consecutive applied ids, what the audit checks against.

* ``runs`` splits ascending ids exactly at every missing id (property-based).
* Batch after batch, a run that continues the previous one extends it: a projection of
  a contiguous log is one row, however many batches it took.
* A parked event ends a run, so the audit counts it as parked, never as applied.
* The per-event log of earlier versions (``applied_events``) is folded into runs when
  the schema is ensured, on PostgreSQL (``sql/040_applied_ranges.sql``) and SQLite.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.eventlog.source import head
from a4c_projector.maintenance.audit import audit
from a4c_projector.readmodel.tables import LIVE, ensure_schema
from a4c_projector.readmodel.writer import runs
from tests.projector.conftest import Store, seed, write_poison


@given(st.sets(st.integers(min_value=1, max_value=300)))
def test_runs_cover_exactly_the_ids_and_split_at_every_missing_one(ids: set[int]) -> None:
    found = runs(sorted(ids))
    assert {n for first, last in found for n in range(first, last + 1)} == ids
    for (_, last), (first, _) in pairwise(found):
        assert first > last + 1  # a missing id between every two runs


def test_runs_examples() -> None:
    assert runs([]) == []
    assert runs([4]) == [(4, 4)]
    assert runs([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]


def applied_log(db: Database) -> list[tuple[int, int]]:
    return [
        (int(r[0]), int(r[1])) for r in db.execute(f'SELECT * FROM "{LIVE.applied}" ORDER BY 1')
    ]


def test_batches_over_a_contiguous_log_extend_one_run(any_store: Store) -> None:
    seed(any_store.app, 6)  # 30 events, no gaps
    projector = any_store.projector(batch_size=5)
    try:
        assert projector.catch_up() == 30
        assert applied_log(projector.db) == [(1, 30)]
        report = audit(projector.db, "a4c")
        assert (report.checked, report.applied, report.parked, report.missing) == (30, 30, 0, [])
    finally:
        projector.close()


def test_a_parked_event_ends_a_run_and_is_audited_as_parked(any_store: Store) -> None:
    seed(any_store.app, 2)  # ids 1-10
    write_poison(any_store)  # ids 11-14: 11 applies, 12 cannot, 13 and 14 park behind it
    seed(any_store.app, 1, prefix="after")  # ids 15-19
    projector = any_store.projector(batch_size=100, dead_letter=True)
    try:
        position = projector.catch_up()
        assert position == head(projector.db)
        parked = [
            int(r[0]) for r in projector.db.execute("SELECT notification_id FROM dead_letters")
        ]
        assert parked == [12, 13, 14]
        assert applied_log(projector.db) == [(1, 11), (15, 19)]
        report = audit(projector.db, "a4c")
        assert report.complete and report.parked == len(parked)
        assert report.applied + report.parked == report.checked == position
    finally:
        projector.close()


def test_the_per_event_log_of_earlier_versions_is_folded_into_runs(any_store: Store) -> None:
    with connect(any_store.location) as db:
        ensure_schema(db)
        with db.transaction():
            db.execute(f'DROP TABLE "{LIVE.applied}"')
            db.execute(
                "CREATE TABLE applied_events (notification_id bigint PRIMARY KEY, event_id text)"
            )
            db.executemany(
                "INSERT INTO applied_events VALUES (%s, 'e')",
                [(n,) for n in (1, 2, 3, 5, 6, 9)],
            )
            # What an interrupted rebuild of that version left beside it.
            db.execute('CREATE TABLE "applied_events__rebuild" (notification_id bigint)')
        ensure_schema(db)
        with db.transaction():
            assert applied_log(db) == [(1, 3), (5, 6), (9, 9)]
            for name in ("applied_events", "applied_events__rebuild"):
                legacy = (
                    f"SELECT to_regclass('{name}') IS NOT NULL"
                    if db.dialect == "postgres"
                    else f"SELECT count(*) FROM sqlite_master WHERE name = '{name}'"
                )
                assert not db.execute(legacy)[0][0], name
        ensure_schema(db)  # idempotent: nothing folded twice
        with db.transaction():
            assert applied_log(db) == [(1, 3), (5, 6), (9, 9)]
