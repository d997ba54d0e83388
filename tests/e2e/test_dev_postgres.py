"""``a4c dev --postgres``: the whole stack on the local PostgreSQL, in a database of its own.

The real Temporal dev server, worker, projector, API and webhook daemon as children of
``a4c dev``, as a user runs it with the one flag: the database is created, every child
stores and reads there (no SQLite file appears), the sample bootstrap completes and the
API serves it from the PostgreSQL read models. Each test runs on a database of its own name
(``POSTGRES_DBNAME``, which ``--postgres`` honours), dropped afterwards.
"""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from a4c_domain import organization_id
from a4c_tool.stackreport import SAMPLE
from tests.e2e.dev import assert_all_gone, descendants, environment, read_until, start_dev
from tests.servers.postgres import PG_HOST, PG_PORT, PG_USER, pg_conninfo


@pytest.fixture
def dev_database(pg_server: str) -> Iterator[str]:
    """A database name nobody uses yet (``a4c dev --postgres`` creates it); dropped after."""
    name = f"a4c_dev_t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def rows(database: str, query: str) -> list[tuple[object, ...]]:
    conninfo = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={database}"
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()


def test_dev_postgres_runs_the_whole_stack_in_its_own_database(
    tmp_path: Path, dev_database: str
) -> None:
    data_dir = tmp_path / "a4c"
    # The tests' server is the flag's default (127.0.0.1:5432, user postgres): only the
    # database's name is given, as a user picking another one would.
    assert pg_conninfo().startswith(f"host={PG_HOST} port={PG_PORT} user={PG_USER} ")
    dev = start_dev(data_dir, "--postgres", env={"POSTGRES_DBNAME": dev_database})
    try:
        out = "".join(read_until(dev, "running; press Ctrl-C to stop"))
        children = descendants(dev.pid)
        # The a4c children that use the store (the codec server reads none of it).
        envs = [
            environment(pid)
            for pid, cmd in children.items()
            if "a4c-" in cmd and "codec-server" not in cmd
        ]
        key = re.findall(r"dev operator key \(this run only\): (a4c_\S+)", out)
        api = re.findall(r"^API:\s+(\S+)", out, flags=re.MULTILINE)
        with httpx.Client(timeout=30) as http:
            shown = http.get(
                f"{api[0]}/v1/organizations/{SAMPLE.slug}",
                headers={"Authorization": f"Bearer {key[0]}"},
            )
    finally:
        dev.send_signal(signal.SIGINT)  # Ctrl-C
        rest, err = dev.communicate(timeout=120)
    assert dev.returncode == 0, out + rest + err
    assert_all_gone(children)

    where = f"PostgreSQL database {dev_database!r} on 127.0.0.1:5432 (schema 'public')"
    assert f"  event store          {where} (created)" in out, out
    assert "state=completed" in out, out
    # Every a4c child (projector, worker, API, webhook daemon) was pointed at that
    # database, not SQLite.
    assert len(envs) == 4, children
    assert "  webhooks             http://127.0.0.1:" in out, out
    for env in envs:
        assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
        assert env["POSTGRES_DBNAME"] == dev_database and "SQLITE_DBNAME" not in env
    assert not (data_dir / "events.sqlite").exists()
    # The API answered from the PostgreSQL read models.
    assert shown.status_code == 200, shown.text
    assert shown.json()["slug"] == SAMPLE.slug

    # The events and the read models are in the new database's public schema.
    (events,) = rows(dev_database, "SELECT count(*) FROM public.a4c_events")
    assert int(str(events[0])) > 0
    (org,) = rows(dev_database, "SELECT id, status FROM public.organizations")
    assert org == (organization_id(SAMPLE.slug), "active")
