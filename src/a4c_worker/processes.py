"""Child processes for the local stack: start, wait until ready, stop cleanly.

Each child gets its own process group so Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in reverse order: SIGTERM, a grace period,
then SIGKILL for anything that did not listen.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ChildFailed(RuntimeError):
    """A child process exited or never became ready."""


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
            list(self.argv),
            env=dict(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise ChildFailed(f"{self.name} exited (code {code}); see {self.log_path}")

    def stop(self, grace_seconds: float = 15.0) -> int | None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(child: Child, port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        if port_open(port):
            return
        time.sleep(0.2)
    raise ChildFailed(f"{child.name} did not open port {port} in {timeout:.0f}s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def wait_for_http(child: Child, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        if http_ok(url):
            return
        time.sleep(0.3)
    raise ChildFailed(f"{child.name} did not answer {url} in {timeout:.0f}s")
