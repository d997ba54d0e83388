"""sql/001_event_store.sql: what a DBA applies equals what eventsourcing creates, and works."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from tests.domain.support import events, org_fields
from tests.servers.postgres import PG_DBNAME, PG_HOST, PG_PORT, PG_USER, fresh_schema, postgres_env
from tests.support import TOKEN_SECRET

DDL = Path(__file__).resolve().parents[2] / "sql" / "001_event_store.sql"


def apply_ddl(conninfo: str, schema: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(DDL.read_text())  # a script, no parameters


def open_app(schema: str, **extra: str) -> OnboardingApplication:
    return OnboardingApplication(
        {**postgres_env(schema, **extra), "A4C_TOKEN_SECRET": TOKEN_SECRET}
    )


@pytest.fixture
def other_schema(pg_server: str) -> Iterator[str]:
    with fresh_schema(pg_server) as schema:
        yield schema


def normalise(text: str | None, schema: str) -> str | None:
    """Schema name, quoting and whitespace removed: what is left is the definition."""
    if text is None:
        return None
    text = text.replace(f'"{schema}".', "").replace(f"{schema}.", "").replace('"', "")
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s*([;(),])\s*", r"\1", text)


def catalog(conninfo: str, schema: str) -> dict[str, Any]:
    """Everything about the event store's objects in ``schema`` that matters to the app."""
    queries = {
        "columns": """
            SELECT table_name, column_name, data_type, is_nullable, column_default,
                   ordinal_position
            FROM information_schema.columns WHERE table_schema = %(s)s
            ORDER BY table_name, ordinal_position""",
        "indexes": """
            SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s
            ORDER BY indexname""",
        "constraints": """
            SELECT conname, contype, pg_get_constraintdef(c.oid)
            FROM pg_constraint c WHERE connamespace = %(s)s::regnamespace ORDER BY conname""",
        "tables": """
            SELECT relname, relkind, reloptions FROM pg_class
            WHERE relnamespace = %(s)s::regnamespace AND relkind IN ('r', 'S', 'c')
            ORDER BY relname""",
        "type_attributes": """
            SELECT t.typname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnum
            FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
            WHERE t.typnamespace = %(s)s::regnamespace AND t.typtype = 'c'
              AND t.typname = 'stored_event_uuid'
            ORDER BY a.attnum""",
        "functions": """
            SELECT proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                   l.lanname, p.proretset, p.prosrc
            FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE pronamespace = %(s)s::regnamespace ORDER BY proname""",
        "sequences": """
            SELECT s.relname, d.refobjsubid FROM pg_class s
            JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a'
            WHERE s.relnamespace = %(s)s::regnamespace AND s.relkind = 'S'""",
    }
    with psycopg.connect(conninfo) as conn:
        return {
            name: [
                tuple(normalise(v, schema) if isinstance(v, str) else v for v in row)
                for row in conn.execute(sql, {"s": schema}).fetchall()
            ]
            for name, sql in queries.items()
        }


def test_ddl_matches_what_eventsourcing_creates(
    pg_server: str, pg_schema: str, other_schema: str
) -> None:
    apply_ddl(pg_server, pg_schema)
    open_app(other_schema).close()  # eventsourcing creates its own (CREATE_TABLE default y)
    ours, theirs = catalog(pg_server, pg_schema), catalog(pg_server, other_schema)
    assert ours["tables"] and ours["functions"] and ours["type_attributes"]
    assert ours == theirs


def test_ddl_is_idempotent_and_works_from_psql(pg_server: str, pg_schema: str) -> None:
    psql = shutil.which("psql")
    assert psql, "psql (postgresql-client) is required: it is how DBAs apply sql/"
    command = [psql, "-v", "ON_ERROR_STOP=1", "-q", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER]
    env = {**os.environ, "PGOPTIONS": f"-c search_path={pg_schema}"}
    for _ in range(2):
        subprocess.run([*command, "-d", PG_DBNAME, "-f", str(DDL)], env=env, check=True, timeout=60)
    first = catalog(pg_server, pg_schema)
    apply_ddl(pg_server, pg_schema)
    assert catalog(pg_server, pg_schema) == first
    assert first["tables"]


@pytest.mark.parametrize("db_functions", ["n", "y"], ids=["table-lock", "lock-free"])
def test_app_runs_on_the_ddl_without_creating_tables(
    pg_server: str, pg_schema: str, db_functions: str
) -> None:
    apply_ddl(pg_server, pg_schema)
    before = catalog(pg_server, pg_schema)
    app = open_app(pg_schema, CREATE_TABLE="n", POSTGRES_ENABLE_DB_FUNCTIONS=db_functions)
    try:
        org = app.register_organization(**org_fields())
        inv = app.invite(
            organization_id=org.id,
            email="a@example.com",
            role="owner",
            first_name="A",
            last_name="B",
        )
        accepted = app.accept_invitation(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=inv.id,
            token=app.invitation_token(inv.id, ALL_ORGANIZATIONS),
            user_id="u",
        )
        assert accepted.position is not None and org.position is not None
        assert app.register_organization(**org_fields()).position is None
    finally:
        app.close()
    reader = open_app(pg_schema, CREATE_TABLE="n")
    try:
        assert [type(e).__name__ for e in events(reader)] == [
            "Registered",
            "Invited",
            "InvitationIssued",
            "Accepted",
        ]
        assert reader.get_invitation(inv.id, ALL_ORGANIZATIONS).status == "accepted"
    finally:
        reader.close()
    assert catalog(pg_server, pg_schema) == before  # the app changed no DDL


def test_create_table_n_really_creates_nothing(pg_schema: str) -> None:
    """The control for the test above: without the DDL, CREATE_TABLE=n cannot work."""
    app = open_app(pg_schema, CREATE_TABLE="n")
    try:
        with pytest.raises(Exception, match=r"stored_event_uuid|a4c_events"):
            app.register_organization(**org_fields())
    finally:
        app.close()
