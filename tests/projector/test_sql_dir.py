"""Where the read-model DDL is found: configured, source tree, installed data files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.sqldir import SHARED_SQL_DIR, find_sql_dir, source_sql_dir, sql_files
from tests.projector.conftest import Store, run_cli


def ddl_copy(root: Path) -> Path:
    target = root / "ddl"
    target.mkdir(parents=True)
    for path in sql_files(source_sql_dir()):
        shutil.copy(path, target / path.name)
    return target


def test_the_source_tree_ships_the_ddl_in_order() -> None:
    names = [p.name for p in sql_files()]
    assert names == sorted(names) and names[0].startswith("010_")
    assert "001_event_store.sql" not in names  # the DBA's, not the projector's


def test_a_configured_directory_comes_first_and_is_never_skipped(tmp_path: Path) -> None:
    configured = ddl_copy(tmp_path)
    assert find_sql_dir(configured) == configured
    with pytest.raises(FileNotFoundError, match="PROJECTOR_SQL_DIR"):
        find_sql_dir(tmp_path / "typo")


def test_without_a_source_tree_the_installed_copy_is_used(tmp_path: Path) -> None:
    installed = ddl_copy(tmp_path / "prefix" / SHARED_SQL_DIR)
    missing = tmp_path / "site-packages" / "sql"
    assert find_sql_dir(source=missing, installed=[tmp_path / "nowhere", installed]) == installed
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_sql_dir(source=missing, installed=[tmp_path / "nowhere"])


def test_the_cli_reads_projector_sql_dir(pg_store: Store, tmp_path: Path) -> None:
    code, _, err = run_cli(pg_store.env, "status", PROJECTOR_SQL_DIR=str(tmp_path / "typo"))
    assert code == 2 and "PROJECTOR_SQL_DIR" in err
    marked = ddl_copy(tmp_path)
    # A marker in the copy proves the CLI ran this DDL, not the source tree's.
    (marked / "099_marker.sql").write_text("CREATE TABLE IF NOT EXISTS ddl_marker (x int);")
    code, _, err = run_cli(pg_store.env, "status", PROJECTOR_SQL_DIR=str(marked))
    assert code == 0, err
    with connect(pg_store.location) as db:
        assert db.execute("SELECT to_regclass('ddl_marker') IS NOT NULL")[0][0] is True
