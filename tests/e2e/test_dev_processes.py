"""``a4c dev``'s children never outlive it, and a data folder in use is named, not joined.

Real processes throughout: the ``a4c`` console script with its Temporal dev server,
projector, worker and API. Each test stops the stack by one exit path — its stdout closed by
a reader that went away, a child failing (an exception in the supervisor), SIGTERM while
starting, SIGKILL of the supervisor — and then checks, by pid, that every process the
stack started is gone. No test waits for the sample bootstrap, which keeps them short.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from a4c_tool.processes import free_port
from tests.e2e.dev import (
    A4C,
    STARTUP_TIMEOUT,
    assert_all_gone,
    descendants,
    environment,
    read_until,
    start_dev,
    the_stack,
)
from tests.support import TOKEN_SECRET

TEMPORAL = str(Path(sys.executable).parent / "temporal")


def refused(data_dir: Path, api_port: int | None = None) -> tuple[int, str, str]:
    """``a4c dev --once`` where it must refuse at once (a started stack is killed)."""
    dev = start_dev(data_dir, "--once", api_port=api_port)
    try:
        out, err = dev.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        dev.kill()
        out, err = dev.communicate()
        pytest.fail(f"a4c dev did not refuse within 60 s:\n{out}\n{err}")
    return dev.returncode, out, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "a4c"


def test_a_closed_stdout_stops_every_child(data_dir: Path) -> None:
    """``a4c dev | head``: the reader goes away; nothing is left running, no BrokenPipeError."""
    dev = start_dev(data_dir)
    read_until(dev, "  api ")
    children = descendants(dev.pid)
    the_stack(children)
    assert dev.stdout is not None
    dev.stdout.close()  # the reader exits: the next line a4c dev prints meets a closed pipe
    _, err = dev.communicate(timeout=120)
    assert_all_gone(children)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def test_ctrl_c_with_the_output_piped_through_tee_stops_every_child(tmp_path: Path) -> None:
    """The reported case: Ctrl-C reaches ``a4c dev`` and ``tee`` alike, so tee is gone
    by the time the stack says it is stopping."""
    shown = tmp_path / "shown.txt"
    command = (
        f"{A4C} --data-dir {tmp_path / 'a4c'} dev --temporal-port {free_port()} "
        f"--ui-port {free_port()} --api-port {free_port()} | tee {shown}"
    )
    terminal = subprocess.Popen(  # a shell in its own group: the terminal's foreground job
        ["/bin/sh", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "  api " not in (shown.read_text() if shown.exists() else ""):
        assert time.monotonic() < deadline and terminal.poll() is None, terminal.stderr
        time.sleep(0.3)
    children = descendants(terminal.pid)
    the_stack(children)
    os.killpg(terminal.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    _, err = terminal.communicate(timeout=120)
    assert_all_gone(children)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def test_sigkill_of_the_supervisor_takes_the_children_along(data_dir: Path) -> None:
    # A worker's secret the developer exported: the worker gets it, the API does not.
    dev = start_dev(data_dir, env={"A4C_TOKEN_SECRET": TOKEN_SECRET, "SMTP_PASSWORD": "pw"})
    read_until(dev, "  api ")
    children = descendants(dev.pid)
    the_stack(children)
    # Only the worker derives tokens: the other children (the API too) never hold the secret.
    holders = {cmd for pid, cmd in children.items() if "A4C_TOKEN_SECRET" in environment(pid)}
    assert holders and all("a4c-worker" in cmd for cmd in holders), holders
    # The API holds its dev credential as API_KEYS, a hash; the key itself only the report shows.
    (api,) = [pid for pid, cmd in children.items() if "a4c-api" in cmd]
    (worker,) = [pid for pid, cmd in children.items() if "a4c-worker run" in cmd]
    assert "SMTP_PASSWORD" in environment(worker) and "SMTP_PASSWORD" not in environment(api)
    (entry,) = environment(api)["API_KEYS"].split(",")
    name, digest, grant = entry.split(":")
    assert (name, len(digest), grant) == ("a4c-dev", 64, "operator")
    dev.kill()
    dev.communicate(timeout=30)
    assert_all_gone(children)


def test_sigterm_while_starting_stops_what_was_started(data_dir: Path) -> None:
    dev = start_dev(data_dir)
    read_until(dev, "  temporal dev server ")
    children = descendants(dev.pid)
    assert any("temporal" in cmd for cmd in children.values()), children
    dev.send_signal(signal.SIGTERM)
    out, err = dev.communicate(timeout=120)
    assert_all_gone(children | descendants(dev.pid))
    assert "Traceback" not in err, err
    assert "stopped temporal" in out, out


@pytest.mark.parametrize(
    ("setting", "child", "started_before", "stopped"),
    [
        # Settings only the failing child reads and refuses: it exits 2 at start, which
        # the supervisor meets as an exception while waiting for it to become ready.
        (
            "MAX_CONCURRENT_ACTIVITIES=0",
            "worker",
            "  projector ",
            ("projector", "codec-server", "temporal"),
        ),
        (
            "API_CONSISTENCY_TIMEOUT=999",
            "api",
            "  worker ",
            ("worker", "projector", "codec-server", "temporal"),
        ),
    ],
)
def test_a_failing_child_stops_the_others_and_is_named_in_one_line(
    data_dir: Path, setting: str, child: str, started_before: str, stopped: tuple[str, ...]
) -> None:
    variable, value = setting.split("=")
    dev = start_dev(data_dir, env={variable: value})
    read_until(dev, started_before)
    children = descendants(dev.pid)
    out, err = dev.communicate(timeout=120)
    assert_all_gone(children)
    assert dev.returncode == 1, out + err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(f"a4c dev: {child} exited (code 2); see "), err
    # The failed child first (reaped), then the others in reverse starting order.
    shown = [line.split()[1] for line in out.splitlines() if line.startswith("  stopped ")]
    assert shown == [child, *stopped], out


def test_the_api_port_taken_is_refused_before_anything_starts(data_dir: Path) -> None:
    """The links point at the API's port, so it is never swapped for another: refused."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = refused(data_dir, api_port=port)
    assert code == 2, out + err
    assert err.strip() == (
        f"a4c dev: port {port}, where the invitation links point "
        f"(http://localhost:{port}/invitations/accept), is in use by another program: stop "
        "it, or choose another port with --api-port (links sent by that run point there)"
    ), err
    assert "temporal dev server" not in out  # nothing was started


def test_a_temporal_server_left_on_the_data_folder_is_named(data_dir: Path) -> None:
    """A dev server from an earlier run still holds temporal.db: refused, by pid."""
    data_dir.mkdir(parents=True)
    leftover = subprocess.Popen(
        [TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(free_port()), "--db-filename", str(data_dir / "temporal.db"),
         "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (data_dir / "temporal.db").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        code, out, err = refused(data_dir)
        assert code == 2, out + err
        assert (
            f"a4c dev: a Temporal dev server from an earlier run is still running "
            f"(pid {leftover.pid}) on this data folder" in err
        ), err
        assert leftover.poll() is None  # named, not touched
        assert "temporal dev server  127.0.0.1" not in out  # nothing was started
    finally:
        leftover.kill()
        leftover.wait()


def test_a_second_stack_on_the_same_data_folder_is_refused_naming_the_first(
    data_dir: Path,
) -> None:
    first = start_dev(data_dir)
    try:
        read_until(first, "  api ")
        children = descendants(first.pid)
        code, out, err = refused(data_dir)
        assert code == 2, out + err
        assert "from an earlier run are still running on this data folder" in err, err
        assert f"a4c dev (pid {first.pid})" in err, err
        temporal = [pid for pid, command in children.items() if "temporal" in command]
        assert f"a Temporal dev server (pid {temporal[0]})" in err, err
        assert first.poll() is None  # the first stack is untouched
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
