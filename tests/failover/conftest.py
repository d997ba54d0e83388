"""One pg_auto_failover cluster (tests/servers/pgfailover.py) for every failover test,
started once per session, and a fresh schema in it per test."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.servers.pgfailover import FailoverCluster


@pytest.fixture(scope="session")
def failover_cluster() -> Iterator[FailoverCluster]:
    # Not under pytest's tmp_path: its parents are private to root, and the cluster runs
    # as postgres (it owns this folder, and removes it when it stops).
    with FailoverCluster(Path(tempfile.mkdtemp(prefix="a4c-failover-"))) as cluster:
        yield cluster


@pytest.fixture
def failover_schema(failover_cluster: FailoverCluster) -> Iterator[str]:
    """A fresh schema in the cluster's database, dropped after the test (on whichever
    node is primary by then)."""
    schema = f"f_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(failover_cluster.conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    failover_cluster.wait_healthy()
    with psycopg.connect(failover_cluster.conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
