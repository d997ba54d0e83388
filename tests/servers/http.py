"""HTTP for tests: a real ``uvicorn.Server`` serving an ASGI app from a background thread.

``serve_asgi(app)`` binds 127.0.0.1 on a free port, waits until the server accepts
connections, yields a :class:`ServedApp` (its ``base_url`` and the access-log lines the
server wrote), and stops the server gracefully on exit (lifespan shutdown included).
It works from sync and async tests alike: the server has its own thread and event loop.

The access log is captured from uvicorn's own ``uvicorn.access`` logger, filtered to
this server's thread, so several servers running at once (the app under test, the
OpenID provider) each see only their own lines. Tests that must prove a secret never
reaches the access log search ``served.access_log``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from tests.support import free_port, wait_for

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# The two loggers uvicorn writes to; not their parent "uvicorn" too, or each record
# propagating to it would be captured twice.
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")


@dataclass
class ServedApp:
    """A running server: where it is and what it logged.

    ``access_log`` holds the formatted access-log lines (``'127.0.0.1:5555 - "GET
    /path?query HTTP/1.1" 200'``), ``records`` every uvicorn log record of this server,
    both appended while the server runs.
    """

    base_url: str
    access_log: list[str] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (``"/accept/abc"``) on this server."""
        return self.base_url + path


class _ThreadCapture(logging.Handler):
    """Keeps the records logged from one thread (the server's), in that server's lists."""

    def __init__(self, served: ServedApp) -> None:
        super().__init__(logging.DEBUG)
        self.served = served
        self.thread_id: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id:
            return
        self.served.records.append(record)
        if record.name == "uvicorn.access":
            self.served.access_log.append(record.getMessage())


@contextmanager
def serve_asgi(
    app: ASGIApp,
    *,
    port: int | None = None,
    log_config: dict[str, Any] | str | None = None,
    access_log: bool = True,
) -> Iterator[ServedApp]:
    """Serve ``app`` on ``http://127.0.0.1:<free port>`` for the ``with`` block.

    ``port`` (from ``tests.support.free_port()``) is for an app that must know its own
    URL before it is served (links it mails, its sign-in callback); default: a free one.

    ``log_config`` is passed to uvicorn (a ``dictConfig`` dict or a file), for tests
    of the service's own logging configuration; note that uvicorn applies it to the
    process-wide ``logging`` module. By default (``None``) uvicorn leaves logging
    alone and the lines are still captured. ``access_log=False`` serves as uvicorn's
    ``--no-access-log`` does.
    """
    port = free_port(HOST) if port is None else port
    served = ServedApp(base_url=f"http://{HOST}:{port}")
    loggers = [logging.getLogger(name) for name in UVICORN_LOGGERS]
    # uvicorn.Config changes these loggers (access_log=False empties the access logger
    # and stops its propagation, for the whole process); put them back afterwards.
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_config=log_config,
        access_log=access_log,
        lifespan="auto",
        # No timer-based keep-alive close racing a test's next request on the same
        # connection; the server closes idle connections at shutdown anyway.
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    capture = _ThreadCapture(served)
    for lg in loggers:
        # uvicorn writes access lines only if its access logger has a handler, so
        # capturing must not turn on an access log the server was told to keep off.
        if access_log or lg.name != "uvicorn.access":
            lg.addHandler(capture)
        # INFO must pass the logger's own level check for the lines to be captured.
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)

    def run() -> None:
        capture.thread_id = threading.get_ident()  # before the server logs anything
        server.run()

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    try:
        thread.start()
        wait_for(
            lambda: server.started or not thread.is_alive(),
            timeout=START_TIMEOUT,
            what=f"uvicorn to listen on {served.base_url}",
        )
        if not server.started:
            messages = "\n".join(r.getMessage() for r in served.records)
            raise RuntimeError(f"uvicorn did not start on {served.base_url}:\n{messages}")
        yield served
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():  # a connection or task that would not finish: cut it off
            server.force_exit = True
            thread.join(STOP_TIMEOUT)
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
