"""``scripts/setup.sh`` waits for the package manager's lock instead of failing.

The real apt-get runs in a private sandbox (its own state, cache, dpkg status and an
empty source list), so holding the sandbox's list lock never gets in the way of an
install on this machine. The lock is taken the way apt takes it (an fcntl lock).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

APT_WAIT = Path(__file__).resolve().parents[2] / "scripts" / "apt-wait.sh"


def sandbox(root: Path) -> list[str]:
    for folder in ("state/lists/partial", "cache/archives/partial", "dpkg", "sources.list.d"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "dpkg" / "status").touch()
    (root / "sources.list").touch()
    settings = {
        "Dir::State": root / "state",
        "Dir::State::status": root / "dpkg" / "status",
        "Dir::Cache": root / "cache",
        "Dir::Etc::sourcelist": root / "sources.list",
        "Dir::Etc::sourceparts": root / "sources.list.d",
    }
    return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]


@contextmanager
def held(lock: Path, seconds: float | None) -> Iterator[None]:
    """An fcntl lock on ``lock`` (as apt takes it), released after ``seconds`` or at exit."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    release = threading.Timer(seconds or 0, fcntl.lockf, (fd, fcntl.LOCK_UN))
    if seconds is not None:
        release.start()
    try:
        yield
    finally:
        release.cancel()
        os.close(fd)


def run(argv: list[str], **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, env=os.environ | env
    )
    return done, time.monotonic() - started


def test_apt_update_waits_for_a_list_lock_another_install_holds(tmp_path: Path) -> None:
    options = sandbox(tmp_path)
    lock = tmp_path / "state" / "lists" / "lock"
    with held(lock, None):  # what setup.sh used to run: it fails at once
        plain, _ = run(["apt-get", *options, "update"])
    assert plain.returncode != 0 and "Could not get lock" in plain.stderr, plain.stderr

    with held(lock, 3.0):
        waited, seconds = run(["bash", str(APT_WAIT), *options, "update", "-qq"])
    assert waited.returncode == 0, waited.stderr
    assert seconds >= 3.0
    assert "waiting for the package manager's lock" in waited.stderr


def test_the_wait_is_bounded_and_then_names_the_lock(tmp_path: Path) -> None:
    options = sandbox(tmp_path)
    with held(tmp_path / "state" / "lists" / "lock", None):
        gave_up, seconds = run(
            ["bash", str(APT_WAIT), *options, "update", "-qq"], A4C_APT_LOCK_TIMEOUT="1"
        )
    assert gave_up.returncode != 0
    assert "Could not get lock" in gave_up.stderr, gave_up.stderr
    assert seconds < 30
