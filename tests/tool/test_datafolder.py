"""The data folder's guards on their own: which event store its Temporal state belongs to,
and who holds it. (``tests/e2e/test_dev_processes.py`` runs both through ``a4c dev``.)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from a4c_tool.datafolder import (
    TEMPORAL_DB,
    DataFolderInUse,
    StoreMismatch,
    check_temporal_state,
    claimed,
    holders,
)

SQLITE = {"PERSISTENCE_MODULE": "eventsourcing.sqlite"}
PG = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "test",
      "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
      "POSTGRES_PASSWORD": "not-named-anywhere"}  # fmt: skip


def sqlite(folder: Path) -> dict[str, str]:
    return SQLITE | {"SQLITE_DBNAME": str((folder / "events.sqlite").resolve())}


def test_a_fresh_folder_records_its_store_and_the_same_store_passes(tmp_path: Path) -> None:
    check_temporal_state(tmp_path, PG)
    (tmp_path / "temporal.db").touch()  # Temporal ran
    check_temporal_state(tmp_path, PG)
    with pytest.raises(StoreMismatch) as refused:
        check_temporal_state(tmp_path, sqlite(tmp_path))
    text = str(refused.value)
    assert "belongs to PostgreSQL database 'test' on 127.0.0.1:5432 (schema 'public')" in text
    assert f"but this run uses the SQLite file {tmp_path.resolve() / 'events.sqlite'}" in text
    assert "not-named-anywhere" not in text


def test_another_postgres_database_is_another_store(tmp_path: Path) -> None:
    check_temporal_state(tmp_path, PG)
    (tmp_path / "temporal.db").touch()
    with pytest.raises(StoreMismatch):
        check_temporal_state(tmp_path, PG | {"POSTGRES_SCHEMA": "tenant_b"})


def test_a_folder_from_before_the_record_belongs_to_its_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "temporal.db").touch()
    (tmp_path / "events.sqlite").touch()
    with pytest.raises(StoreMismatch, match="belongs to the SQLite file"):
        check_temporal_state(tmp_path, PG)
    check_temporal_state(tmp_path, sqlite(tmp_path))  # and it is recorded from now on
    assert (tmp_path / "temporal-store").read_text().startswith("the SQLite file ")


def test_starting_temporal_afresh_lets_another_store_in(tmp_path: Path) -> None:
    check_temporal_state(tmp_path, sqlite(tmp_path))
    check_temporal_state(tmp_path, PG)  # no temporal.db yet: nothing to protect


def test_a_process_holding_the_event_store_is_named_and_the_claim_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "events.sqlite").touch()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; f = open(sys.argv[1], 'rb'); print(flush=True); time.sleep(60)",
         str(tmp_path / "events.sqlite")],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline()  # the file is open
        assert holder.pid in holders(tmp_path)
        in_use = pytest.raises(DataFolderInUse, match=rf"still running \(pid {holder.pid}\)")
        with in_use, claimed(tmp_path):
            pytest.fail("claimed a folder another process holds")
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while holder.pid in holders(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    # A second claim while the first holds the lock (same process, second descriptor).
    refused = pytest.raises(DataFolderInUse, match="another run holds")
    with claimed(tmp_path), refused, claimed(tmp_path):
        pytest.fail("claimed a folder this process holds already")


def test_a_holder_whose_other_descriptor_closes_during_the_look_is_still_named(
    tmp_path: Path,
) -> None:
    """A busy process (the Temporal dev server) opens and closes descriptors while /proc
    is read: one gone between listing and reading must not hide the others (a second
    stack was refused without naming the dev server holding temporal.db; seen once)."""
    data_dir = tmp_path / "a4c"
    data_dir.mkdir()
    (data_dir / TEMPORAL_DB).touch()
    proc = tmp_path / "proc"
    fds = proc / "4242" / "fd"
    fds.mkdir(parents=True)
    (fds / "3").write_text("")  # not a link: reading it fails, as a closed descriptor's does
    (fds / "4").symlink_to(data_dir / TEMPORAL_DB)
    (proc / "4242" / "cmdline").write_bytes(b"/usr/bin/temporal\0server\0start-dev\0")
    assert holders(data_dir, proc=proc) == {4242: "a Temporal dev server"}
