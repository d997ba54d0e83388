"""One read-model schema: ``sql/``, the SQLite DDL and the query records agree with it.

:mod:`a4c_projector.schema` declares every table, column, type, default,
constraint and index once. The PostgreSQL DDL stays hand-written in ``sql/`` for DBAs;
these tests apply it to a fresh schema (and the derived SQLite DDL to a fresh file),
read back what the database created, and compare it with the declaration, so a column
added in one place and forgotten in another fails here, naming it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from pydantic import BaseModel

from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.dialects.sqldir import source_sql_dir, sql_files
from a4c_projector.queries import (
    EmailDomainRecord,
    InvitationRecord,
    MemberRecord,
    OrganizationRecord,
    SSOConnectionRecord,
)
from a4c_projector.readmodel.tables import ensure_schema
from a4c_projector.schema import (
    EMAIL_DOMAINS,
    INVITATIONS,
    MEMBERS,
    ORGANIZATIONS,
    SQLITE_AFFINITY,
    SQLITE_DEFAULT,
    SSO_CONNECTIONS,
    TABLES,
    Column,
    Table,
    compared_columns,
    expected_columns,
    expected_tables,
    sqlite_ddl,
)

# How PostgreSQL prints each declared type and default (format_type, pg_get_expr).
PG_TYPE = {
    "uuid": "uuid",
    "text": "text",
    "text[]": "text[]",
    "timestamptz": "timestamp with time zone",
    "bigint": "bigint",
    "integer": "integer",
    "boolean": "boolean",
}
PG_DEFAULT = {"now": "now()", "empty": "'{}'::text[]", "zero": "0"}


def declared_pg(table: Table) -> dict[str, object]:
    indexes: dict[str, tuple[str, str, tuple[str, ...]]] = {
        f"{table.name}_pkey": ("primary", "btree", (table.primary_key,))
    }
    for column in table.columns:
        if column.unique:
            indexes[f"{table.name}_{column.name}_key"] = ("unique", "btree", (column.name,))
    for index in table.indexes:
        indexes[table.index_name(index)] = ("plain", index.method, index.columns)
    return {
        "columns": [
            (
                c.name,
                PG_TYPE[c.type],
                not c.nullable,
                None if c.default is None else PG_DEFAULT[c.default],
            )
            for c in table.columns
        ],
        "indexes": indexes,
        "checks": [] if table.check is None else [f"CHECK (({table.check}))"],
    }


def names(array: object) -> tuple[str, ...]:
    """A PostgreSQL ``name[]`` as psycopg returns it (a list of str), as a tuple."""
    assert isinstance(array, list)
    return tuple(array)


def created_pg(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, name: str
) -> dict[str, object]:
    columns = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (f'"{schema}"."{name}"',),
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.relname, CASE WHEN x.indisprimary THEN 'primary' WHEN x.indisunique "
        "THEN 'unique' ELSE 'plain' END, am.amname, "
        "array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY n) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_am am ON am.oid = i.relam WHERE x.indrelid = to_regclass(%s)",
        (f'"{schema}"."{name}"',),
    ).fetchall()
    checks = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype = 'c' ORDER BY 1",
        (f'"{schema}"."{name}"',),
    ).fetchall()
    return {
        "columns": [tuple(c) for c in columns],
        "indexes": {str(r[0]): (r[1], r[2], names(r[3])) for r in indexes},
        "checks": [str(r[0]) for r in checks],
    }


def pg_differences(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, tables: tuple[Table, ...]
) -> list[str]:
    found = {
        str(r[0])
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    }
    problems = []
    if found != {t.name for t in tables}:
        problems.append(f"tables: sql/ creates {sorted(found)}, declared {expected_tables()}")
    for table in tables:
        created, declared = created_pg(conn, schema, table.name), declared_pg(table)
        for aspect in ("columns", "indexes", "checks"):
            if created[aspect] != declared[aspect]:
                problems.append(
                    f"{table.name} {aspect}: sql/ {created[aspect]} != declared {declared[aspect]}"
                )
    return problems


@pytest.fixture
def sql_applied(pg_server: str, pg_schema: str) -> psycopg.Connection[tuple[object, ...]]:
    """A fresh schema with ``sql/0NN_*.sql`` (the read models) applied, as a DBA would."""
    conn = psycopg.connect(pg_server, autocommit=True, options=f"-c search_path={pg_schema}")
    for path in sql_files(source_sql_dir()):
        conn.execute(path.read_text().encode())
    return conn


def test_the_sql_ddl_creates_exactly_the_declared_schema(
    sql_applied: psycopg.Connection[tuple[object, ...]], pg_schema: str
) -> None:
    with sql_applied:
        assert pg_differences(sql_applied, pg_schema, TABLES) == []


def test_a_column_declared_but_missing_from_sql_is_named(
    sql_applied: psycopg.Connection[tuple[object, ...]], pg_schema: str
) -> None:
    """The comparison can fail: a column added to the schema only is reported."""
    added = replace(
        ORGANIZATIONS, columns=(*ORGANIZATIONS.columns, Column("region", "text", nullable=True))
    )
    tables = tuple(added if t is ORGANIZATIONS else t for t in TABLES)
    with sql_applied:
        problems = pg_differences(sql_applied, pg_schema, tables)
    assert len(problems) == 1 and "organizations columns" in problems[0]
    assert "'region'" in problems[0]


def sqlite_printed(default: str) -> str:
    """A default as ``PRAGMA table_info`` prints it: an expression without its parentheses."""
    return default[1:-1] if default.startswith("(") else default


def test_the_derived_sqlite_ddl_creates_exactly_the_declared_schema(tmp_path: Path) -> None:
    location = Location(dialect="sqlite", sqlite_path=str(tmp_path / "models.sqlite"))
    with connect(location) as db:
        ensure_schema(db)
    conn = sqlite3.connect(location.sqlite_path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert names == set(expected_tables())
        for table in TABLES:
            info = conn.execute(f'PRAGMA table_info("{table.name}")').fetchall()
            assert [(r[1], r[2], bool(r[3]) or bool(r[5]), r[4], bool(r[5])) for r in info] == [
                (
                    c.name,
                    SQLITE_AFFINITY[c.type],
                    not c.nullable,
                    None if c.default is None else sqlite_printed(SQLITE_DEFAULT[c.default]),
                    c.name == table.primary_key,
                )
                for c in table.columns
            ], table.name
            indexes = {
                r[1]: r[3] for r in conn.execute(f'PRAGMA index_list("{table.name}")').fetchall()
            }
            created = {n: o for n, o in indexes.items() if o == "c"}
            assert {
                name: tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{name}")'))
                for name in created
            } == {table.index_name(i): i.columns for i in table.indexes if i.method == "btree"}, (
                table.name
            )
            unique = [
                tuple(r[2] for r in conn.execute(f'PRAGMA index_info("{name}")'))
                for name, origin in indexes.items()
                if origin == "u"
            ]
            assert unique == [(c.name,) for c in table.columns if c.unique], table.name
            sql = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
            ).fetchone()[0]
            assert table.check is None or f"CHECK ({table.check})" in sql
    finally:
        conn.close()


# Columns added after 0.4 (``ADD COLUMN IF NOT EXISTS`` in sql/; appended on SQLite).
ADDED_SINCE_0_4 = {
    "invitations": ("accepted_issuer", "accepted_subject"),
    "members": ("issuer", "subject"),
}


def test_a_sqlite_projection_of_0_4_gets_the_columns_added_since(tmp_path: Path) -> None:
    """A store made before a column existed gets it when the projector starts, after the
    columns it had (as PostgreSQL's ``ADD COLUMN`` appends), keeping its rows."""
    location = Location(dialect="sqlite", sqlite_path=str(tmp_path / "old.sqlite"))
    conn = sqlite3.connect(location.sqlite_path)
    for name, added in ADDED_SINCE_0_4.items():
        (table,) = (t for t in TABLES if t.name == name)
        older = replace(table, columns=tuple(c for c in table.columns if c.name not in added))
        for statement in sqlite_ddl(older):
            conn.execute(statement)
    conn.execute("INSERT INTO members (invitation_id, organization_id, user_id, email, role, "
                 "first_name, last_name, joined_at, modified_at, version, last_event_id, "
                 "last_position) VALUES ('m', 'o', 'u', 'e', 'r', 'f', 'l', 't', 't', 1, "
                 "'x', 1)")  # fmt: skip
    conn.commit()
    conn.close()
    with connect(location) as db:
        ensure_schema(db)
    conn = sqlite3.connect(location.sqlite_path)
    try:
        for name in ADDED_SINCE_0_4:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
            assert tuple(columns) == expected_columns(name), name
        row = conn.execute("SELECT user_id, issuer, subject FROM members").fetchone()
        assert row == ("u", None, None)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("record", "table"),
    [
        (OrganizationRecord, ORGANIZATIONS),
        (InvitationRecord, INVITATIONS),
        (MemberRecord, MEMBERS),
        (SSOConnectionRecord, SSO_CONNECTIONS),
        (EmailDomainRecord, EMAIL_DOMAINS),
    ],
)
def test_each_query_record_holds_its_tables_columns(record: type[BaseModel], table: Table) -> None:
    assert tuple(record.model_fields) == compared_columns(table)


def test_validate_can_ask_for_the_expected_tables_and_columns() -> None:
    assert expected_tables(read_models_only=True) == (
        "organizations",
        "invitations",
        "members",
        "invitation_tokens",
        "public_events",
        "webhook_endpoints",
        "sso_connections",
        "email_domains",
    )
    assert set(expected_tables()) == {
        "projector_tracking",
        "organizations",
        "invitations",
        "members",
        "invitation_tokens",
        "public_events",
        "webhook_endpoints",
        "sso_connections",
        "email_domains",
        "applied_ranges",
        "dead_letters",
    }
    assert expected_columns("invitations")[:3] == ("id", "organization_id", "email")
    assert "token_hash" in expected_columns("invitations")
    with pytest.raises(KeyError, match="no projector table 'nope'"):
        expected_columns("nope")
