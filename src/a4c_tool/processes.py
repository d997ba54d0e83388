"""Child processes for the local stack: start, wait until ready, stop cleanly.

Each child gets its own session (and process group) so Ctrl-C in the terminal reaches
only the supervisor, which then stops the children in reverse order: SIGTERM to the
child's whole group, a grace period, then SIGKILL for anything that did not listen.

That orderly stop cannot run when the supervisor is killed outright (SIGKILL, the OOM
killer), so on Linux each child also asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``). The kernel sends it when the *thread* that forked the child
ends, so children are started from the supervisor's main thread. It reaches the child
itself, not its descendants: the stack's children (the Temporal CLI's dev server, the
projector, the worker, the API served by one uvicorn process) start none of their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from a4c_domain.errors import ConfigurationError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ChildFailed(RuntimeError):
    """A child process exited or never became ready."""


class PortInUse(ConfigurationError):
    """A port the stack must have (it cannot take another) is taken by another program."""


class StopRequested(Exception):
    """Ctrl-C or SIGTERM asked the supervisor to stop."""


class StopSignals:
    """Ctrl-C and SIGTERM as a request that the supervisor's waits act on.

    The handler only records the request: an exception raised from a signal handler
    lands wherever the main thread happens to be, and in an at-fork hook or a finalizer
    it is printed and dropped (the stack would keep running). So every wait calls
    :meth:`check`, which raises :class:`StopRequested` there. A second signal raises
    ``KeyboardInterrupt`` at once: stop waiting for the orderly end (the kernel's
    PDEATHSIG still stops the children when the supervisor exits).
    """

    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise StopRequested

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self.handle) for signum in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, pass_fds: Sequence[int] = ()) -> None:
        """Start the child; ``pass_fds`` stay open in it (the data folder's lock)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("children are started from the main thread (PR_SET_PDEATHSIG)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
                list(self.argv),
                env=dict(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
                preexec_fn=_dies_with(os.getpid()),
            )

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise ChildFailed(f"{self.name} exited (code {code}); see {self.log_path}")

    def stop(self, grace_seconds: float = 15.0) -> int | None:
        """SIGTERM to the child's group; after the grace, SIGKILL to what is left of it."""
        proc = self.process
        if proc is None:
            return None
        if proc.returncode is None:
            # Not reaped yet, so the group's id (the child's pid) cannot be reused while
            # the group is signalled — also after the child has exited (WNOWAIT).
            _signal_group(proc.pid, signal.SIGTERM)
            _wait_unreaped(proc.pid, grace_seconds)
            _signal_group(proc.pid, signal.SIGKILL)  # stragglers; the child, if it ignored us
            proc.wait()
        return proc.returncode


def _wait_unreaped(pid: int, timeout: float) -> None:
    """Wait up to ``timeout`` for ``pid`` to exit, leaving it to be reaped by ``wait``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
            return
        time.sleep(0.05)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is empty: nothing left to stop
        os.killpg(pgid, signum)


def _dies_with(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking for SIGTERM when ``parent`` dies; None where prctl is missing."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork
    except (OSError, AttributeError):  # not Linux: only the orderly stop applies
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _no_stop() -> None:
    pass


def wait_for_port(
    child: Child, port: int, timeout: float = 60.0, check: Callable[[], None] = _no_stop
) -> None:
    """Until ``port`` accepts; ``check`` runs on every round (a stop request raises)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
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


def wait_for_http(
    child: Child, url: str, timeout: float = 60.0, check: Callable[[], None] = _no_stop
) -> None:
    """Until ``url`` answers 2xx; ``check`` runs on every round (a stop request raises)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        child.check_alive()
        if http_ok(url):
            return
        time.sleep(0.3)
    raise ChildFailed(f"{child.name} did not answer {url} in {timeout:.0f}s")
