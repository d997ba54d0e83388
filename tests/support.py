"""Shared test support, each defined once: the token secret, a free port, waiting.

The real servers (PostgreSQL with its fresh-schema helper ``fresh_schema``, Temporal,
BIND, SMTP, uvicorn, Chromium, an OpenID provider) are pytest plugins under
``tests/servers/``, registered in ``tests/conftest.py``; import their helpers from there.
Helpers for one package's tests live next to them (``tests/domain/support.py``,
``tests/projector/conftest.py``, ``tests/worker/flows.py``).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

# The A4C_TOKEN_SECRET of every test that needs one. Distinctive, so a leak check can
# search for it; the recorded workflow histories (tests/worker/histories) hold tokens
# issued with it, so it never changes.
TOKEN_SECRET = "test-token-secret-0123456789-abcdefghijklmnop"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP right now (named needs both; the others TCP)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port for both TCP and UDP")


def wait_for(
    condition: Callable[[], object], timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_for_async(
    condition: Callable[[], Awaitable[object]],
    seconds: float = 30.0,
    what: str = "condition",
    interval: float = 0.1,
) -> None:
    """:func:`wait_for` inside an event loop, for a condition that is awaited (a
    workflow query; a blocking check wrapped in ``asyncio.to_thread``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
