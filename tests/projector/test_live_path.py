"""The live path's costs: what a batch that finds nothing new leaves behind.

A following projector runs a batch for every wake-up; at a thousand events a second
many find their events already applied by the batch before. Such a batch changed
nothing, so it must not make the server flush its WAL: its row lock is rolled back,
never committed (a commit of a transaction holding an xid waits for a WAL flush,
competing with the writers' own commits).
"""

from __future__ import annotations

from a4c_projector.dialects.connection import connect
from tests.projector.conftest import Store, seed

# The commit status of the last transaction that locked the projection's row (its xmax,
# with the current xid epoch: pg's 32-bit xmax, widened as txid_status needs).
LAST_LOCKER_STATUS = (
    "SELECT txid_status((pg_current_xact_id()::text::bigint >> 32 << 32) "
    "+ xmax::text::bigint) FROM projector_tracking WHERE projection = %s"
)


def test_a_batch_that_applies_nothing_commits_nothing(pg_store: Store) -> None:
    seed(pg_store.app, 2)
    projector = pg_store.projector()
    try:
        projector.catch_up()
        with connect(pg_store.location, autocommit=True) as db:
            position = db.execute("SELECT position FROM projector_tracking")[0][0]
        result = projector.run_batch()
        assert (result.size, result.position) == (0, position)
        with connect(pg_store.location, autocommit=True) as db:
            assert db.execute(LAST_LOCKER_STATUS, ("a4c",))[0][0] == "aborted"
        seed(pg_store.app, 1, prefix="later")  # and a batch that applies still commits
        applied = projector.run_batch()
        assert applied.size > 0
        with connect(pg_store.location, autocommit=True) as db:
            assert db.execute("SELECT position FROM projector_tracking")[0][0] == applied.position
    finally:
        projector.close()
