"""Rebuilds: readers keep the live model meanwhile, a mismatch is refused (also in rows
written between the comparison and the swap), the swap lets readers pass while a long
reader holds the tables, and leaves the same tables and indexes a fresh start would."""

from __future__ import annotations

import json
import threading
import time
from uuid import UUID

import psycopg
import pytest

from a4c_projector.dialects.connection import connect
from a4c_projector.maintenance.compare import differing_rows
from a4c_projector.maintenance.rebuild import (
    RebuildMismatch,
    SwapLock,
    SwapLockUnavailable,
    rebuild,
)
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel.tables import LIVE, TableSet, ensure_schema, index_names
from tests.projector.conftest import (
    Store,
    bulk_organizations,
    projector_cli,
    seed,
    store_head,
)
from tests.support import wait_for

ORGS = 500


def test_cli_rebuild_keeps_serving_reads_until_the_swap(pg_store: Store) -> None:
    bulk_organizations(pg_store, ORGS)
    projector = pg_store.projector()
    projector.catch_up()
    projector.close()
    expected = pg_store.live_rows()
    with connect(pg_store.location) as db:
        indexes = index_names(db)

    # Readers on their own connection all along: each read sees the whole model.
    stop, seen, failures = threading.Event(), [], []

    def reader() -> None:
        with ReadModel(pg_store.location) as reads:
            while not stop.is_set():
                try:
                    seen.append(len(reads.organizations(tag="t0")))
                except Exception as exc:
                    failures.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    schema = pg_store.location.schema
    rebuild_row = (
        f"SELECT position FROM \"{schema}\".projector_tracking WHERE projection = 'a4c__rebuild'"
    )
    proc = projector_cli(pg_store.env, "rebuild", "--no-progress", "--batch-size", "40")
    try:
        with psycopg.connect(pg_store.location.conninfo) as blocker:
            # Freeze the rebuild half-way: its next batch waits for its tracking row.
            def half_built() -> bool:
                row = blocker.execute(rebuild_row + " FOR UPDATE").fetchone()
                if row is not None and 0 < row[0] <= 2 * ORGS:
                    return True
                blocker.rollback()
                assert proc.poll() is None, "the rebuild finished before the test froze it"
                return False

            wait_for(half_built, timeout=60, what="the rebuild to be half-way")
            with connect(pg_store.location) as db:
                fresh = db.execute('SELECT count(*) FROM "organizations__rebuild"')[0][0]
            assert 0 < fresh < ORGS  # a half-built model exists ...
            assert pg_store.live_rows() == expected  # ... and readers see the whole one
            reads_while_frozen = len(seen)
            wait_for(lambda: len(seen) > reads_while_frozen + 5, what="reads during the rebuild")
            blocker.rollback()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        stop.set()
        thread.join(10)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["swapped"] is True and report["events"] == 4 * ORGS
    assert report["differences"] == []
    assert not failures
    assert seen and set(seen) == {len([n for n in range(ORGS) if n % 3 == 0])}
    assert pg_store.live_rows() == expected
    with connect(pg_store.location) as db:
        assert index_names(db) == indexes


def test_a_rebuild_that_disagrees_is_not_swapped(pg_store: Store) -> None:
    seed(pg_store.app, 3)
    projector = pg_store.projector()
    projector.catch_up()
    projector.close()
    with connect(pg_store.location) as db, db.transaction():
        (tampered,) = db.execute(
            "UPDATE organizations SET name = 'Tampered' WHERE slug = 'org-1' RETURNING id"
        )[0]
    with pytest.raises(RebuildMismatch) as refused:
        rebuild(pg_store.location, pg_store.store.mapper)
    assert refused.value.differences == [f"organizations {tampered}"]
    with ReadModel(pg_store.location) as reads:
        row = reads.organization_by_slug("org-1")
        assert row is not None and row.name == "Tampered"
    report = rebuild(pg_store.location, pg_store.store.mapper, force=True)
    assert report.swapped and report.differences == [f"organizations {tampered}"]
    with ReadModel(pg_store.location) as reads:
        row = reads.organization_by_slug("org-1")
        assert row is not None and row.name == "Org 1"


def constraint_names(store: Store) -> list[str]:
    if store.location.dialect != "postgres":
        return []
    with connect(store.location) as db:
        rows = db.execute(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = %s ORDER BY 1",
            (store.location.schema,),
        )
    return [r[0] for r in rows]


def test_rebuild_and_restart_leave_exactly_the_indexes_of_a_fresh_start(
    any_store: Store,
) -> None:
    seed(any_store.app, 2)
    with connect(any_store.location) as db:
        ensure_schema(db)
        fresh_start = index_names(db)
    constraints = constraint_names(any_store)
    assert fresh_start["organizations"] and fresh_start["invitations"]
    for _ in range(2):  # a second rebuild must not stack anything either
        projector = any_store.projector()
        projector.catch_up()
        projector.close()
        assert rebuild(any_store.location, any_store.store.mapper).swapped
        with connect(any_store.location) as db:
            ensure_schema(db)  # what the next start of the daemon does
            assert index_names(db) == fresh_start
            assert index_names(db, TableSet("__rebuild")) == {
                t: [] for t in TableSet("__rebuild").all
            }
        assert constraint_names(any_store) == constraints
    with connect(any_store.location) as db:
        assert set(index_names(db)) == set(LIVE.all)


def test_the_comparison_blocks_neither_readers_nor_the_live_runner(pg_store: Store) -> None:
    """Paused inside the comparison phase, reads with a 1 s lock timeout still succeed
    and the live runner still applies new events; the swap then takes those along."""
    bulk_organizations(pg_store, 50)
    live = pg_store.projector()
    live.catch_up()
    with live.db.transaction():  # SET (not LOCAL) in a committed transaction: the session's
        live.db.execute("SET lock_timeout = '1s'")
    reads: list[tuple[int, int]] = []

    def read_live_tables() -> tuple[int, int]:
        with psycopg.connect(pg_store.location.conninfo, autocommit=True) as reader:
            reader.execute("SET lock_timeout = '1s'")
            reader.execute(f'SET search_path = "{pg_store.location.schema}"')
            row = reader.execute(
                "SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM invitations)"
            ).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

    def during(phase: str) -> None:
        if phase != "compare":
            return
        reads.append(read_live_tables())
        bulk_organizations(pg_store, 3, prefix="late")
        live.catch_up()  # writes the live tables while the comparison's snapshot is open
        reads.append(read_live_tables())

    try:
        report = rebuild(pg_store.location, pg_store.store.mapper, checkpoint=during)
    finally:
        live.close()
    assert reads == [(50, 0), (53, 0)]
    assert report.swapped and report.differences == []
    assert report.events == 4 * 53 and report.position == store_head(pg_store)
    assert pg_store.live_rows() == pg_store.rebuilt_rows()
    with ReadModel(pg_store.location) as model:
        assert model.organization_by_slug("late-2") is not None


def test_the_comparison_reports_rows_missing_on_either_side(any_store: Store) -> None:
    seed(any_store.app, 3)
    projector = any_store.projector()
    projector.catch_up()
    projector.close()
    with connect(any_store.location) as db, db.transaction():
        (removed,) = db.execute("DELETE FROM organizations WHERE slug = 'org-0' RETURNING id")[0]
    with pytest.raises(RebuildMismatch) as refused:
        rebuild(any_store.location, any_store.store.mapper)
    assert refused.value.differences == [f"organizations {removed}"]


def test_the_comparison_of_given_rows_looks_at_those_rows_only(any_store: Store) -> None:
    seed(any_store.app, 3)
    for tables in (LIVE, TableSet("__other")):
        projector = any_store.projector(projection=f"p{tables.suffix}", tables=tables)
        projector.catch_up()
        projector.close()
    with connect(any_store.location) as db, db.transaction():
        tampered = [
            UUID(
                str(
                    db.execute(
                        "UPDATE organizations SET name = 'Tampered' WHERE slug = %s RETURNING id",
                        (slug,),
                    )[0][0]
                )
            )
            for slug in ("org-0", "org-2")
        ]
        other = TableSet("__other")
        assert differing_rows(db, LIVE, other) == sorted(f"organizations {t}" for t in tampered)
        assert differing_rows(db, LIVE, other, [tampered[1]]) == [f"organizations {tampered[1]}"]
        untouched = UUID(str(db.execute("SELECT id FROM organizations WHERE slug = 'org-1'")[0][0]))
        assert differing_rows(db, LIVE, other, [untouched]) == []
        assert differing_rows(db, LIVE, other, []) == []


def test_rows_written_between_the_comparison_and_the_swap_are_compared_too(
    pg_store: Store,
) -> None:
    """The live runner applies events after the comparison's snapshot; the swap compares
    the rows those events wrote, and a live row that went wrong there is caught."""
    bulk_organizations(pg_store, 20)
    live = pg_store.projector()
    live.catch_up()

    def during(phase: str) -> None:
        if phase != "compare":
            return
        bulk_organizations(pg_store, 2, prefix="late")
        live.catch_up()  # after the snapshot: not in the full comparison
        with psycopg.connect(pg_store.location.conninfo, autocommit=True) as conn:
            conn.execute(
                f'UPDATE "{pg_store.location.schema}".organizations SET name = %s '
                "WHERE slug = 'late-1'",
                ("Tampered",),
            )

    try:
        with pytest.raises(RebuildMismatch) as refused:
            rebuild(pg_store.location, pg_store.store.mapper, checkpoint=during)
    finally:
        live.close()
    with ReadModel(pg_store.location) as reads:
        late = reads.organization_by_slug("late-1")
        assert late is not None and late.name == "Tampered"  # not swapped
    assert refused.value.differences == [f"organizations {late.id}"]


class LockHolder:
    """Another session holding the live organizations table (a long-running reader)."""

    def __init__(self, store: Store) -> None:
        self.conn = psycopg.connect(store.location.conninfo)
        self.conn.execute(f'SELECT 1 FROM "{store.location.schema}".organizations LIMIT 1')

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def test_the_swap_lets_readers_pass_while_a_long_reader_holds_the_tables(
    pg_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Each attempt at the swap lock gives up after its timeout, so the reads queued
    behind it go on; once the long reader is done, the swap happens."""
    bulk_organizations(pg_store, 20)
    live = pg_store.projector()
    live.catch_up()
    live.close()
    holder: list[LockHolder] = []
    read_errors: list[BaseException] = []
    reads = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal reads
        with psycopg.connect(pg_store.location.conninfo, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '1s'")  # a read stuck behind the swap fails
            while not done.is_set():
                try:
                    conn.execute(f'SELECT count(*) FROM "{pg_store.location.schema}".organizations')
                    reads += 1
                except psycopg.Error as exc:
                    read_errors.append(exc)
                time.sleep(0.02)

    def during(phase: str) -> None:
        if phase == "compare":
            holder.append(LockHolder(pg_store))
            threading.Timer(2.0, holder[0].release).start()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        report = rebuild(
            pg_store.location,
            pg_store.store.mapper,
            checkpoint=during,
            swap_lock=SwapLock(timeout=0.2, attempts=100, pause=0.1),
        )
    finally:
        done.set()
        thread.join()
    assert report.swapped
    assert read_errors == [] and reads > 0
    assert any("live tables are busy" in r.getMessage() for r in caplog.records)


def test_a_swap_that_never_gets_the_lock_gives_up_and_keeps_both_sets(pg_store: Store) -> None:
    bulk_organizations(pg_store, 5)
    live = pg_store.projector()
    live.catch_up()
    live.close()
    before = pg_store.live_rows()
    holder = LockHolder(pg_store)
    try:
        with pytest.raises(SwapLockUnavailable, match="run the rebuild again"):
            rebuild(
                pg_store.location,
                pg_store.store.mapper,
                swap_lock=SwapLock(timeout=0.1, attempts=3, pause=0.05),
            )
    finally:
        holder.release()
    assert pg_store.live_rows() == before
    with connect(pg_store.location) as db, db.transaction():
        fresh = db.execute('SELECT count(*) FROM "organizations__rebuild"')[0][0]
    assert fresh == 5  # the verified fresh set is kept
