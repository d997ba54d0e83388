"""The projector's configuration and connections: the real ``a4c-projector`` script.

Passwords that libpq's conninfo syntax would misread reach PostgreSQL intact (the
local server trusts 127.0.0.1, so the proof is what libpq parsed and used, plus a
working connection as a role that has the password); every ``POSTGRES_*`` variable
eventsourcing reads is honoured; a bad setting ends with exit code 2 and one line that
names the variable, never a traceback or the password; no token secret is needed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from a4c_domain import OnboardingApplication
from a4c_domain.application import TOKEN_SECRET_VAR
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.eventlog.store import open_event_store
from tests.projector.conftest import (
    ROOT,
    Daemon,
    Store,
    seed,
    tracked_position,
)
from tests.servers.postgres import fresh_schema, postgres_env
from tests.support import TOKEN_SECRET, free_port, wait_for

SCRIPT = Path(sys.executable).with_name("a4c-projector")
CANARY = "canary-password"  # must never be printed
NASTY = "canary pw='x' port=1"
NASTY_PASSWORDS = ["pass word with spaces", 'it\'s "quoted" \\ back', "k=v=w", "x port=1", NASTY]


def projector(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str, float]:
    """Run the installed console script; exit code, stdout, stderr and seconds taken."""
    started = time.monotonic()
    done = subprocess.run(
        [str(SCRIPT), *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def assert_config_error(code: int, err: str, variable: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert variable in lines[0], err
    for secret in (CANARY, "canary", TOKEN_SECRET):
        assert secret not in err


@pytest.fixture
def role(pg_server: str, pg_schema: str) -> Iterator[str]:
    """A login role owning the test schema; its password is set by each test."""
    name = f"cfg_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                sql.Identifier(pg_schema), sql.Identifier(name)
            )
        )
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def set_password(pg_server: str, name: str, password: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password))
        )


@pytest.mark.parametrize("password", NASTY_PASSWORDS)
def test_a_password_libpq_would_misread_reaches_postgres_intact(
    pg_server: str, pg_schema: str, role: str, password: str
) -> None:
    set_password(pg_server, role, password)
    env = postgres_env(pg_schema, POSTGRES_USER=role, POSTGRES_PASSWORD=password)
    env[TOKEN_SECRET_VAR] = (
        TOKEN_SECRET  # the projector ignores it; set so only the password differs
    )
    location = open_event_store(env).location
    parsed = conninfo_to_dict(location.conninfo)
    assert (parsed["password"], parsed["port"], parsed["user"]) == (password, "5432", role)
    with connect(location) as db:
        assert db.execute("SELECT current_user") == [(role,)]
        assert isinstance(db, PostgresDatabase)
        info = db.conn.info
        assert (info.password, info.port, info.user) == (password, 5432, role)


def test_the_cli_works_as_a_role_with_a_nasty_password(
    pg_server: str, pg_schema: str, role: str
) -> None:
    set_password(pg_server, role, NASTY)
    env = postgres_env(pg_schema, POSTGRES_USER=role, POSTGRES_PASSWORD=NASTY)
    env[TOKEN_SECRET_VAR] = TOKEN_SECRET
    code, out, err, _ = projector(env, "status")
    assert code == 0, err
    assert json.loads(out)["position"] == 0
    assert "canary" not in out + err


_TOPIC_PASSWORD: list[str] = []


def topic_password() -> str:
    """``POSTGRES_GET_PASSWORD_TOPIC`` target (a cloud IAM token function in production)."""
    return _TOPIC_PASSWORD[-1]


def test_the_password_topic_and_connect_timeout_are_honoured(
    pg_server: str, pg_schema: str, role: str
) -> None:
    env = postgres_env(
        pg_schema,
        POSTGRES_USER=role,
        POSTGRES_GET_PASSWORD_TOPIC=f"{__name__}:topic_password",
        POSTGRES_CONNECT_TIMEOUT="7",
        A4C_TOKEN_SECRET=TOKEN_SECRET,
    )
    del env["POSTGRES_PASSWORD"]
    _TOPIC_PASSWORD.append("first token")
    location = open_event_store(env).location
    assert conninfo_to_dict(location.conninfo)["connect_timeout"] == "7"
    for token in ("first token", "rotated token"):  # asked again for every connection
        _TOPIC_PASSWORD.append(token)
        set_password(pg_server, role, token)
        with connect(location) as db:
            assert isinstance(db, PostgresDatabase)
            assert db.conn.info.password == token


@pytest.fixture
def pg_env(pg_schema: str) -> dict[str, str]:
    """A valid PostgreSQL environment with a password (and a token secret, ignored)."""
    return postgres_env(pg_schema, POSTGRES_PASSWORD=CANARY, A4C_TOKEN_SECRET=TOKEN_SECRET)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PERSISTENCE_MODULE", "eventsourcing.mysql"),
        ("PERSISTENCE_MODULE", "eventsourcing.popo"),
        ("PROJECTOR_LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
        ("POSTGRES_CONNECT_TIMEOUT", "soon"),
        ("POSTGRES_POOL_SIZE", "big"),
        ("POSTGRES_HOST", None),
    ],
)
def test_a_bad_setting_exits_2_naming_it(
    pg_env: dict[str, str], variable: str, value: str | None
) -> None:
    if value is None:
        del pg_env[variable]
    else:
        pg_env[variable] = value
    code, _, err, _ = projector(pg_env, "status")
    assert_config_error(code, err, variable)


def test_a_store_that_cannot_be_opened_is_named(pg_env: dict[str, str], tmp_path: Path) -> None:
    code, _, err, _ = projector({**pg_env, "POSTGRES_SCHEMA": "no_such_schema"}, "status")
    assert_config_error(code, err, "POSTGRES_SCHEMA")
    unopenable = {"SQLITE_DBNAME": str(tmp_path / "missing" / "events.sqlite")}
    code, _, err, _ = projector(unopenable, "status")
    assert_config_error(code, err, "SQLITE_DBNAME")


def test_a_database_that_does_not_exist_is_named_at_once(pg_env: dict[str, str]) -> None:
    code, _, err, took = projector({**pg_env, "POSTGRES_DBNAME": "no_such_db"}, "status")
    assert_config_error(code, err, "POSTGRES_DBNAME")
    assert "no_such_db" in err
    assert took < 15  # not eventsourcing's 30 s wait for a pool connection


def test_a_port_nobody_listens_on_is_named(pg_env: dict[str, str]) -> None:
    port = free_port()
    code, _, err, _ = projector({**pg_env, "POSTGRES_PORT": str(port)}, "status")
    assert_config_error(code, err, "POSTGRES_PORT")


def test_a_server_that_never_answers_is_given_up_on_after_the_connect_timeout(
    pg_env: dict[str, str],
) -> None:
    """A listener that accepts and stays silent: only the connect timeout ends the wait."""
    held: list[socket.socket] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()

        def accept() -> None:
            for _ in range(4):
                held.append(silent.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        env = {
            **pg_env,
            "POSTGRES_PORT": str(silent.getsockname()[1]),
            "POSTGRES_CONNECT_TIMEOUT": "2",
        }
        code, _, err, took = projector(env, "status")
    for conn in held:
        conn.close()
    assert_config_error(code, err, "POSTGRES_HOST")
    assert "2 s" in err
    assert took < 12


def test_trust_auth_needs_no_postgres_password(pg_schema: str) -> None:
    env = postgres_env(pg_schema, A4C_TOKEN_SECRET=TOKEN_SECRET)
    del env["POSTGRES_PASSWORD"]
    code, out, err, _ = projector(env, "status")
    assert code == 0, err
    assert json.loads(out)["position"] == 0


def test_read_only_commands_and_the_daemon_need_no_token_secret(
    pg_store: Store,
) -> None:
    views = seed(pg_store.app, 2)
    env = {k: v for k, v in pg_store.env.items() if k != TOKEN_SECRET_VAR}
    daemon = Daemon(env)
    try:
        wait_for(lambda: tracked_position(pg_store) == views[-1].position, what="catch-up")
        assert daemon.terminate()[0] == 0
    finally:
        daemon.close()
    shown = ""
    for args in (["status"], ["audit"], ["rebuild", "--no-progress"], ["show", "organizations"]):
        code, shown, err, _ = projector(env, *args)
        assert code == 0, (args, err)
    assert "org-1" in shown


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_daemon_honours_log_format(pg_env: dict[str, str], log_format: str) -> None:
    daemon = Daemon(pg_env, LOG_FORMAT=log_format)
    try:
        daemon.wait_serving()
        line = next(row for row in daemon.stderr.splitlines() if "probes on" in row)
        if log_format == "json":
            assert json.loads(line)["message"].startswith("probes on")
        else:
            assert not line.startswith("{") and " INFO a4c_projector " in line
        assert daemon.terminate()[0] == 0
    finally:
        daemon.close()


def test_the_daemon_reads_a_compressed_store_and_passes_create_table_on(
    pg_server: str, pg_schema: str
) -> None:
    """Every store variable the worker passes on reaches the projector too."""
    env = postgres_env(
        pg_schema,
        A4C_TOKEN_SECRET=TOKEN_SECRET,
        COMPRESSOR_TOPIC="eventsourcing.compressor:ZlibCompressor",
    )
    store = Store(env, OnboardingApplication(env), open_event_store(env))
    daemon = Daemon(env)
    try:
        views = seed(store.app, 1)
        wait_for(lambda: tracked_position(store) == views[-1].position, what="catch-up")
        assert daemon.terminate()[0] == 0
    finally:
        daemon.close()
        store.app.close()
    assert "org-0" in projector(env, "show", "organizations")[1]
    # CREATE_TABLE=n reaches eventsourcing: in a schema without the table, none is made.
    with fresh_schema(pg_server) as empty:
        unmade = {**env, "CREATE_TABLE": "n", "POSTGRES_SCHEMA": empty}
        code, _, err, _ = projector(unmade, "status")
    assert_config_error(code, err, "POSTGRES_SCHEMA")
    code, _, err, _ = projector({**env, "CREATE_TABLE": "maybe"}, "status")
    assert_config_error(code, err, "CREATE_TABLE")
