"""Writers that PREPARE TRANSACTION while holding a gap (two-phase commit).

PREPARE ends a writer's virtual transaction — its locks move to ``-1/<xid>`` — while
``COMMIT PREPARED`` can still commit the id it drew. Proof (a) of the guard must not
take the end of the virtual transaction for the end of the writer (the model check
found it: ``tests/projector/test_gap_model.py``). Prepared transactions need
``max_prepared_transactions`` above 0 (PostgreSQL's default is 0), so these tests start
a throwaway cluster of their own: the shared server must not be restarted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from a4c_domain import OnboardingApplication
from a4c_projector.dialects.connection import connect
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.maintenance.audit import audit
from tests.projector.conftest import Store, store_head
from tests.projector.test_no_skip import stored_org_events
from tests.servers.postgres import fresh_schema, postgres_env
from tests.support import TOKEN_SECRET, free_port, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def prepared_pg() -> Iterator[int]:
    """The port of a throwaway PostgreSQL 15 cluster with ``max_prepared_transactions``
    above 0, run as the ``postgres`` user (initdb refuses root) as this process's child."""
    folder = Path(tempfile.mkdtemp(prefix="a4c-2pc-"))
    shutil.chown(folder, "postgres", "postgres")
    data, port = str(folder / "data"), free_port()
    subprocess.run(
        [str(PG_BIN / "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
        user="postgres",
        group="postgres",
        cwd=folder,
    )
    server = subprocess.Popen(
        [
            *(str(PG_BIN / "postgres"), "-D", data, "-p", str(port), "-k", str(folder)),
            *("-c", "listen_addresses=127.0.0.1", "-c", "max_prepared_transactions=4"),
            *("-c", "fsync=off", "-c", "synchronous_commit=off"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user="postgres",
        group="postgres",
        cwd=folder,
    )
    try:
        wait_for(lambda: ready(port), timeout=30, what="the throwaway PostgreSQL")
        yield port
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown: SIGTERM's would wait for sessions
        server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


def conninfo(port: int) -> str:
    return f"host=127.0.0.1 port={port} user=postgres dbname=postgres"


def ready(port: int) -> bool:
    try:
        with psycopg.connect(conninfo(port), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture
def store(prepared_pg: int) -> Iterator[Store]:
    with fresh_schema(conninfo(prepared_pg)) as schema:
        env = postgres_env(
            schema,
            A4C_TOKEN_SECRET=TOKEN_SECRET,
            POSTGRES_PORT=str(prepared_pg),
            POSTGRES_DBNAME="postgres",
        )
        made = Store(env, OnboardingApplication(env), open_event_store(env))
        try:
            yield made
        finally:
            made.app.close()


@pytest.mark.parametrize(
    ("prepare_when", "outcome"),
    [
        ("after the fence", "COMMIT"),
        ("after the fence", "ROLLBACK"),
        ("before the fence", "COMMIT"),
    ],
)
def test_a_prepared_writers_gap_holds_until_commit_or_rollback_prepared(
    store: Store, prepare_when: str, outcome: str
) -> None:
    location = store.location
    gid = f"a4c-{os.getpid()}-{time.monotonic_ns()}"
    store.app.register_organization(name="First", slug="first", org_type="provider")
    writer = psycopg.connect(location.conninfo)
    projector = store.projector(gap_grace=0.05)
    try:
        # The writer draws id 2 and holds it; a later writer commits id 3 above the gap.
        writer.cursor().executemany(
            f"INSERT INTO {location.qualified_events_table} "
            "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
            stored_org_events(store, "prepared"),
        )
        if prepare_when == "before the fence":
            writer.execute(f"PREPARE TRANSACTION '{gid}'")
        store.app.register_organization(name="Fast", slug="fast", org_type="provider")
        assert projector.run_batch().position == 1

        def fenced() -> bool:
            assert projector.run_batch().position == 1
            gap = projector.source.guard.gaps.get(2)
            return gap is not None and gap.fence is not None

        wait_for(fenced, timeout=5, what="a fence over the gap at id 2")
        if prepare_when == "after the fence":
            writer.execute(f"PREPARE TRANSACTION '{gid}'")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # many fetches, the writer's vxid long gone
            assert projector.run_batch().position == 1, "moved past a prepared writer's id"
            time.sleep(0.02)
        with psycopg.connect(location.conninfo, autocommit=True) as other:
            other.execute(f"{outcome} PREPARED '{gid}'")
        wait_for(lambda: projector.run_batch().position == store_head(store), timeout=10)
    finally:
        writer.close()
        with psycopg.connect(location.conninfo, autocommit=True) as other:
            left = other.execute("SELECT 1 FROM pg_prepared_xacts WHERE gid = %s", (gid,))
            if left.fetchone():
                other.execute(f"ROLLBACK PREPARED '{gid}'")
        projector.close()
    with connect(location) as db:
        report = audit(db, "a4c")
    assert report.complete and report.position == store_head(store)  # nothing missing
