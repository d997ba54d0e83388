"""``a4c dev --postgres``'s database on the real local server: made once, named if unreachable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from a4c_tool.cli import POSTGRES_DATA_DIR, build_parser, default_data_dir, main
from a4c_tool.devstore import DEV_DATABASE, DevDatabaseUnavailable, ensure_database, postgres_store
from a4c_tool.processes import free_port
from tests.servers.postgres import PG_HOST, PG_PORT, PG_USER


@pytest.fixture
def database_name(pg_server: str) -> Iterator[str]:
    name = f"a4c_dev_t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def local(**given: str) -> dict[str, str]:
    return postgres_store(
        {"POSTGRES_HOST": PG_HOST, "POSTGRES_PORT": PG_PORT, "POSTGRES_USER": PG_USER, **given}
    )


def test_the_database_is_created_once(database_name: str) -> None:
    store = local(POSTGRES_DBNAME=database_name)
    assert ensure_database(store) is True
    assert ensure_database(store) is False  # a second run finds it
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database_name) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (database_name,)


def test_the_defaults_are_the_local_server_and_the_environment_wins() -> None:
    store = postgres_store({"POSTGRES_DBNAME": "mine", "PATH": "/bin"})
    assert store == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_DBNAME": "mine",
    }
    assert postgres_store({})["POSTGRES_DBNAME"] == DEV_DATABASE


def test_a_server_out_of_reach_is_named_and_a4c_dev_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = str(free_port())
    store = local(POSTGRES_PORT=closed, POSTGRES_DBNAME="a4c_dev_nowhere")
    with pytest.raises(DevDatabaseUnavailable) as raised:
        ensure_database(store)
    assert f"'a4c_dev_nowhere' on {PG_HOST}:{closed} as {PG_USER!r}" in str(raised.value)

    monkeypatch.setenv("POSTGRES_PORT", closed)
    code = main(["dev", "--postgres", "--data-dir", str(tmp_path), "--api-port", str(free_port())])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"a4c dev: cannot reach the database 'a4c_dev' on 127.0.0.1:{closed}" in err, err


def test_dev_postgres_has_a_data_folder_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("A4C_DATA_DIR", raising=False)
    assert default_data_dir(postgres=True) == Path(POSTGRES_DATA_DIR)
    assert default_data_dir() == Path(".a4c")
    monkeypatch.setenv("A4C_DATA_DIR", "/srv/a4c")
    assert default_data_dir(postgres=True) == Path("/srv/a4c")  # the operator's choice wins
    assert build_parser().parse_args(["dev", "--postgres"]).postgres is True
