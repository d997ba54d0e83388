"""Running ``a4c dev`` as a user does, and finding what it started (by pid, in /proc).

Shared by the dev-stack tests: the stack's output read line by line, its process tree,
and the check that none of it outlives the stack.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from a4c_tool.processes import free_port

A4C = str(Path(sys.executable).parent / "a4c")
STARTUP_TIMEOUT = 150.0
# What each line of the stack's start-up names, in starting order.
CHILD_LINES = ("  temporal dev server ", "  codec server ", "  projector ", "  worker ", "  api ")
CHILD_COMMANDS = (
    "temporal",
    "a4c-worker codec-server",
    "a4c-projector",
    "a4c-worker run",
    "a4c-api",
)


def start_dev(
    data_dir: Path, *extra: str, api_port: int | None = None, env: Mapping[str, str] = {}
) -> subprocess.Popen[str]:
    """``a4c dev`` on free ports (the API's too, unless given: tests never need 8080)."""
    api = free_port() if api_port is None else api_port
    return subprocess.Popen(
        [A4C, "--data-dir", str(data_dir), "dev", "--temporal-port", str(free_port()),
         "--ui-port", str(free_port()), "--api-port", str(api), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=os.environ | env,
    )  # fmt: skip


def read_until(
    process: subprocess.Popen[str], marker: str, timeout: float = STARTUP_TIMEOUT
) -> list[str]:
    """The lines ``a4c dev`` printed up to the first one holding ``marker``.

    Read from the descriptor, not the text stream: a buffered ``readline`` may take in
    several lines at once, and a marker already in its buffer would never wake the
    selector again when nothing follows it (the stack says it is running, then waits).
    Nothing after the marker's line is consumed (one byte at a time past the selector),
    so ``communicate`` still gets the rest.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    lines: list[str] = []
    line = bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=1.0):
                continue
            byte = os.read(fd, 1)
            if not byte:
                break
            line += byte
            if byte == b"\n":
                lines.append(line.decode())
                line.clear()
                if marker in lines[-1]:
                    return lines
    process.kill()
    _, err = process.communicate(timeout=30)
    pytest.fail(f"no {marker!r} from a4c dev:\n{''.join(lines)}{line.decode()}\n{err}")


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
    """The children (and whatever they started) are all there."""
    commands = " | ".join(processes.values())
    for name in CHILD_COMMANDS:
        assert name in commands, commands


def environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(entry.partition("=")[::2] for entry in raw.split("\0") if entry)
