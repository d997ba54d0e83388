"""``a4c dev``'s children never outlive it, and a data folder in use is named, not joined.

Real processes throughout: the ``a4c`` console script with its Temporal dev server,
projector and worker. Each test stops the stack by one exit path — its stdout closed by
a reader that went away, a child failing (an exception in the supervisor), SIGTERM while
starting, SIGKILL of the supervisor — and then checks, by pid, that every process the
stack started is gone. No test waits for the sample bootstrap, which keeps them short.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import TOKEN_SECRET

from a4c_tool.processes import free_port

A4C = str(Path(sys.executable).parent / "a4c")
TEMPORAL = str(Path(sys.executable).parent / "temporal")
STARTUP_TIMEOUT = 150.0


def start_dev(data_dir: Path, *extra: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [A4C, "--data-dir", str(data_dir), "dev", "--temporal-port", str(free_port()),
         "--ui-port", str(free_port()), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=os.environ | env,
    )  # fmt: skip


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """The lines ``a4c dev`` printed up to the first one holding ``marker``."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=1.0):
                continue
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if marker in line:
                return lines
    process.kill()
    _, err = process.communicate(timeout=30)
    pytest.fail(f"no {marker!r} from a4c dev:\n{''.join(lines)}\n{err}")


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (children, their children...), with its command."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = _command(child)
                frontier.append(child)
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def assert_all_gone(processes: dict[int, str], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        left = {pid: cmd for pid, cmd in processes.items() if alive(pid)}
        if not left:
            return
        time.sleep(0.25)
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    pytest.fail(f"still running {within:.0f}s after the stack ended: {left}")


def the_stack(processes: dict[int, str]) -> None:
    """The three children (and whatever they started) are all there."""
    commands = " | ".join(processes.values())
    for name in ("temporal", "a4c-projector", "a4c-worker"):
        assert name in commands, commands


def refused(data_dir: Path) -> tuple[int, str, str]:
    """``a4c dev --once`` where it must refuse at once (a started stack is killed)."""
    dev = start_dev(data_dir, "--once")
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
    read_until(dev, "  worker ")
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
        f"--ui-port {free_port()} | tee {shown}"
    )
    terminal = subprocess.Popen(  # a shell in its own group: the terminal's foreground job
        ["/bin/sh", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "  worker " not in (shown.read_text() if shown.exists() else ""):
        assert time.monotonic() < deadline and terminal.poll() is None, terminal.stderr
        time.sleep(0.3)
    children = descendants(terminal.pid)
    the_stack(children)
    os.killpg(terminal.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    _, err = terminal.communicate(timeout=120)
    assert_all_gone(children)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(entry.partition("=")[::2] for entry in raw.split("\0") if entry)


def test_sigkill_of_the_supervisor_takes_the_children_along(data_dir: Path) -> None:
    dev = start_dev(data_dir, A4C_TOKEN_SECRET=TOKEN_SECRET)
    read_until(dev, "  worker ")
    children = descendants(dev.pid)
    the_stack(children)
    # Only the worker derives tokens: the other children never hold the secret.
    holders = {cmd for pid, cmd in children.items() if "A4C_TOKEN_SECRET" in environment(pid)}
    assert holders and all("a4c-worker" in cmd for cmd in holders), holders
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


def test_a_failing_child_stops_the_others_and_is_named_in_one_line(data_dir: Path) -> None:
    # A setting only the worker reads and refuses: the worker exits 2 at start, which the
    # supervisor meets as an exception while waiting for it to become ready.
    dev = start_dev(data_dir, MAX_CONCURRENT_ACTIVITIES="0")
    read_until(dev, "  projector ")
    children = descendants(dev.pid)
    out, err = dev.communicate(timeout=120)
    assert_all_gone(children)
    assert dev.returncode == 1, out + err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("a4c dev: worker exited (code 2); see "), err
    assert "stopped projector" in out and "stopped temporal" in out, out


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
        read_until(first, "  worker ")
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
