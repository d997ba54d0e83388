"""PostgreSQL for tests: the real local server, one fresh schema per test.

The server must be there: if it is not, every test that needs it errors (never skips).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

PG_HOST = os.environ.get("A4C_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("A4C_TEST_PG_PORT", "5432")
PG_USER = os.environ.get("A4C_TEST_PG_USER", "postgres")
PG_DBNAME = os.environ.get("A4C_TEST_PG_DBNAME", "test")


def pg_conninfo() -> str:
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={PG_DBNAME}"


def postgres_env(schema: str, **extra: str) -> dict[str, str]:
    """The eventsourcing environment for an app stored in ``schema``."""
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": PG_DBNAME,
        "POSTGRES_HOST": PG_HOST,
        "POSTGRES_PORT": PG_PORT,
        "POSTGRES_USER": PG_USER,
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
    }
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Conninfo of the real PostgreSQL server; errors loudly if it is not running."""
    try:
        with psycopg.connect(pg_conninfo(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:  # pragma: no cover - environment failure
        raise RuntimeError(
            f"PostgreSQL is required at {PG_HOST}:{PG_PORT} (run scripts/ensure-postgres.sh): {exc}"
        ) from exc
    return pg_conninfo()


@contextmanager
def fresh_schema(conninfo: str) -> Iterator[str]:
    """A new, empty schema, dropped (with everything in it) on exit."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_schema(pg_server: str) -> Iterator[str]:
    """A fresh, empty schema, dropped after the test."""
    with fresh_schema(pg_server) as schema:
        yield schema


@pytest.fixture
def own_role(pg_schema: str, pg_server: str) -> Iterator[str]:
    """A login role owning ``pg_schema``, so the test can stop it logging in
    (``ALTER ROLE ... NOLOGIN``); its sessions ended and the role dropped after the test."""
    role = f"a4c_role_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'ALTER SCHEMA "{pg_schema}" OWNER TO "{role}"')
    try:
        yield role
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            # Undo a refusal the test may have left (it failed before allowing logins).
            admin.execute(f'ALTER ROLE "{role}" LOGIN')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')
