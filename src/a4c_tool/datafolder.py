"""The dev stack's data folder: one stack at a time, and one event store per Temporal state.

**One stack at a time.** ``a4c dev`` holds an exclusive ``flock`` on ``dev.lock`` for as
long as it runs, and its children inherit the descriptor, so the lock lasts while any
process of the run lives. A second run is refused, naming the processes still holding
the folder's files (``dev.lock``, ``temporal.db``, ``events.sqlite``) — which also finds
a server left over from a run of an older version that took no lock — instead of
starting a second Temporal server on other ports over the same SQLite files.

**One event store per Temporal state.** The Temporal state in ``temporal.db`` (workflow
ids derived from slugs, completed bootstraps) only makes sense with the event store its
activities wrote to. ``temporal-store`` records which one that is; a run pointed at
another store (PostgreSQL after a SQLite run, or another database) is refused naming
both, rather than "reusing" a bootstrap whose events are elsewhere.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from a4c_domain.errors import ConfigurationError

LOCK_FILE = "dev.lock"
TEMPORAL_DB = "temporal.db"
EVENTS_DB = "events.sqlite"
STORE_RECORD = "temporal-store"
# The files whose holders are named; a SQLite file's -wal/-shm/-journal companions too.
HELD_FILES = (LOCK_FILE, TEMPORAL_DB, EVENTS_DB)


class DataFolderInUse(ConfigurationError):
    """Processes of an earlier run still hold the data folder."""


class StoreMismatch(ConfigurationError):
    """The data folder's Temporal state belongs to another event store."""


@contextmanager
def claimed(data_dir: Path) -> Iterator[int]:
    """Hold the data folder for this run; yields the lock's descriptor for the children."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataFolderInUse(in_use(data_dir, holders(data_dir))) from None
        others = holders(data_dir)
        if others:
            raise DataFolderInUse(in_use(data_dir, others))
        yield fd
    finally:
        os.close(fd)


def holders(data_dir: Path, *, proc: Path = Path("/proc")) -> dict[int, str]:
    """Other processes with one of the folder's held files open: pid → what it is.

    Read from ``/proc`` (Linux); elsewhere, or for another user's processes, the lock
    alone tells that the folder is in use.
    """
    held = {str((data_dir / name).resolve()) for name in HELD_FILES}
    found: dict[int, str] = {}
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:  # gone, or not ours to look at
            continue
        if any(_is_held(target, held) for target in _targets(descriptors)):
            found[int(entry.name)] = _what(entry)
    return found


def _targets(descriptors: list[Path]) -> Iterator[str]:
    """What each descriptor points at; one closed while we look is skipped, not the
    process (a busy holder such as the Temporal dev server opens and closes many)."""
    for descriptor in descriptors:
        try:
            yield os.readlink(descriptor)
        except OSError:
            continue


def _is_held(target: str, held: set[str]) -> bool:
    return any(target == path or target.startswith(f"{path}-") for path in held)


def _what(entry: Path) -> str:
    try:
        argv = (entry / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "a process"
    names = [os.path.basename(arg.decode(errors="replace")) for arg in argv if arg]
    if "temporal" in names[:1]:
        return "a Temporal dev server"
    for script, what in (("a4c-projector", "a projector"), ("a4c-worker", "a worker")):
        if script in names[:2]:
            return what
    if "a4c" in names[:2]:
        return "a4c dev"
    return f"a process ({names[0] if names else '?'})"


def in_use(data_dir: Path, found: Mapping[int, str]) -> str:
    where = f"on this data folder ({data_dir})"
    pids = " ".join(str(pid) for pid in sorted(found))
    if not found:
        return f"another run holds {data_dir / LOCK_FILE}; stop it or choose another --data-dir"
    if len(found) == 1:
        ((pid, what),) = found.items()
        return (
            f"{what} from an earlier run is still running (pid {pid}) {where}; "
            f"stop it (kill {pid}) or choose another --data-dir"
        )
    named = ", ".join(f"{what} (pid {pid})" for pid, what in sorted(found.items()))
    return (
        f"{named} from an earlier run are still running {where}; "
        f"stop them (kill {pids}) or choose another --data-dir"
    )


def store_identity(store: Mapping[str, str]) -> str:
    """Which event store ``store`` (the children's persistence settings) points at."""
    if store.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        host = store.get("POSTGRES_HOST", "localhost")
        port = store.get("POSTGRES_PORT", "5432")
        schema = store.get("POSTGRES_SCHEMA") or "public"
        return (
            f"PostgreSQL database {store.get('POSTGRES_DBNAME', '')!r} on {host}:{port} "
            f"(schema {schema!r})"
        )
    return f"the SQLite file {store.get('SQLITE_DBNAME', '')}"


def check_temporal_state(data_dir: Path, store: Mapping[str, str]) -> None:
    """Refuse a store other than the one the folder's Temporal state was made with."""
    record = data_dir / STORE_RECORD
    current = store_identity(store)
    if (data_dir / TEMPORAL_DB).exists():
        recorded = record.read_text().strip() if record.exists() else _before_records(data_dir)
        if recorded is not None and recorded != current:
            raise StoreMismatch(
                f"the Temporal state in this data folder ({data_dir / TEMPORAL_DB}) belongs "
                f"to {recorded}, but this run uses {current}: its workflows' events are not "
                f"there. Choose another --data-dir for this store, or remove "
                f"{data_dir / TEMPORAL_DB} to start Temporal afresh"
            )
    record.write_text(current + "\n")


def _before_records(data_dir: Path) -> str | None:
    """A folder from before the record existed: its own SQLite file if it has one."""
    events = data_dir / EVENTS_DB
    return store_identity({"SQLITE_DBNAME": str(events.resolve())}) if events.exists() else None
