"""Starting a projector in one store never waits for another store's traffic.

``CREATE INDEX IF NOT EXISTS`` waits for every open write on its table, and the DDL runs
under an advisory lock; were that lock one key for the whole database, one store with a
long write open would hold up every projector start in every other schema (seen as
daemons of unrelated test runs stuck before their first batch).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.readmodel.tables import ensure_schema
from tests.servers.postgres import fresh_schema


@pytest.fixture
def other_schema(pg_server: str) -> Iterator[str]:
    with fresh_schema(pg_server) as schema:
        yield schema


def test_a_busy_store_does_not_hold_up_the_schema_of_another(
    pg_server: str, pg_schema: str, other_schema: str
) -> None:
    busy = Location("postgres", conninfo=pg_server, schema=pg_schema)
    with connect(busy) as db:
        ensure_schema(db)
    writer = psycopg.connect(pg_server)
    writer.execute(f'LOCK TABLE "{pg_schema}".organizations IN ROW EXCLUSIVE MODE')
    stuck = connect(busy)
    starting = threading.Thread(target=ensure_schema, args=(stuck,))
    try:
        starting.start()  # waits for the writer, holding the busy store's DDL lock
        with psycopg.connect(pg_server, autocommit=True) as probe:
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND application_name = %s"
            )
            for _ in range(200):
                if probe.execute(waiting, (busy.application_name("batch"),)).fetchone() == (1,):
                    break
                starting.join(0.05)
            else:
                raise AssertionError("the busy store's DDL never waited for its writer")
        other = connect(Location("postgres", conninfo=pg_server, schema=other_schema))
        try:
            with other.transaction():
                other.execute("SET lock_timeout = '2s'")
            ensure_schema(other)  # LockNotAvailable if the stores shared one DDL lock
            with other.transaction():
                tables = other.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (other_schema,)
                )
            assert tables[0][0] >= 4
        finally:
            other.close()
    finally:
        writer.rollback()
        writer.close()
        starting.join(30)
        stuck.close()
    assert not starting.is_alive()
