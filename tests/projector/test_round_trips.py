"""Round trips of a live batch: what most of its latency is made of.

A live batch of a few events waits for the server once per round trip, and on a busy
machine each wait is a chance to be scheduled late (docs/benchmarks.md, "Issue 21:
live lag"). Counted on the protocol (libpq's trace of the projector's connection: each
time the client, having sent, next reads), not timed: a count is the same on any
machine.
"""

from __future__ import annotations

import logging
import tempfile
from itertools import pairwise
from pathlib import Path

import psycopg
import pytest

from a4c_domain import ALL_ORGANIZATIONS
from a4c_projector.dialects.postgres import PostgresDatabase
from tests.projector.conftest import Store, seed

# Begin, claim the position and probe for dead letters; read the log; write the rows and
# move the position; commit.
LIVE_BATCH_ROUND_TRIPS = 4


def round_trips(trace: str) -> int:
    """How many times the client waited: a message it sent followed by one it read."""
    senders = [line.split("\t")[0] for line in trace.splitlines() if line.strip()]
    return sum(1 for sent, read in pairwise(senders) if (sent, read) == ("F", "B"))


def test_a_live_batch_waits_for_the_server_four_times(pg_store: Store, tmp_path: Path) -> None:
    seed(pg_store.app, 2)
    projector = pg_store.projector()
    try:
        projector.catch_up()
        seed(pg_store.app, 1, prefix="later")  # five events: a live batch's size
        db = projector.db
        assert isinstance(db, PostgresDatabase)
        with tempfile.TemporaryFile("w+") as out:
            db.conn.pgconn.trace(out.fileno())
            db.conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                result = projector.run_batch()
            finally:
                db.conn.pgconn.untrace()
            out.seek(0)
            trace = out.read()
        assert result.applied == 5
        assert round_trips(trace) == LIVE_BATCH_ROUND_TRIPS, trace
        assert pg_store.rebuilt_rows() == pg_store.live_rows()
    finally:
        projector.close()


def test_a_live_batch_reads_what_it_must_look_up_inside_its_pipeline(
    pg_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A fresh projector knows no organization yet: a live batch whose invitation events
    name none must look theirs up in the read model, inside the batch's pipeline, and
    get the rows (not an empty result sent back before the server answered)."""
    views = seed(pg_store.app, 2)
    first = pg_store.projector()
    try:
        first.catch_up()
    finally:
        first.close()
    for view in views:  # events of invitations only: their organization is looked up
        pg_store.app.record_email_sent(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=view.id,
            token_generation=1,
            message_id="again",
        )
    fresh = pg_store.projector()
    try:
        with caplog.at_level(logging.WARNING, logger="a4c_projector"):
            result = fresh.run_batch()
        assert result.applied == 2
        assert not [r for r in caplog.records if "event by event" in r.getMessage()]
        assert pg_store.rebuilt_rows() == pg_store.live_rows()
    finally:
        fresh.close()
