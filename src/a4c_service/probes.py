"""The small HTTP server behind the processes' ``/health``, ``/ready`` and ``/metrics``.

It lives in ``a4c_service``, below the processes, not in the domain library, which has
no business serving HTTP; it serves with the standard library. Kubernetes and Prometheus are
its clients, but anyone who can reach the port is one too, so it is built not to be held
down by them:

* it binds ``127.0.0.1`` unless told otherwise (the manifests bind ``0.0.0.0``);
* every connection has a socket timeout, and its whole request a deadline of the same
  length: a client that connects and sends nothing, or trickles a byte at a time, is
  dropped when it runs out, instead of holding a thread for ever;
* at most ``max_connections`` are served at once, one thread each; a connection beyond
  that is answered ``503`` at once and closed, so idle clients cannot grow the threads;
* the query string is ignored (``/health?x=1`` is ``/health``); an unknown path is 404;
  a check that raises is a bare 500, its text goes to the log, never to the client.

The daemons (projector, webhooks) answer the same three paths the same way: they hand
:func:`serve_checks` their :class:`Checks`, and keep the one database connection their
checks read through in a :class:`KeptConnection`.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from a4c_domain.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 16

Response = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Response]
Verdict = tuple[bool, dict[str, Any]]  # green or red, and the JSON body's fields

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b'Content-Length: 18\r\nConnection: close\r\n\r\n{"status":"busy"}\n'
)


def not_ready(reasons: Sequence[str]) -> str:
    """The ``/ready`` status both daemons give: ``ok``, or ``not_ready: <first code>``."""
    return f"not_ready: {reasons[0]}" if reasons else "ok"


def json_response(ok: bool, body: Mapping[str, Any]) -> Response:
    """200 with ``body`` when ``ok``, else 503."""
    return (200 if ok else 503), "application/json", json.dumps(body).encode()


def heartbeat_health(heartbeat: float, max_age: float) -> Verdict:
    """``/health`` of a loop that beats (``heartbeat``: its last beat, monotonic): alive
    while the beat is at most ``max_age`` seconds old."""
    age = time.monotonic() - heartbeat
    return age <= max_age, {"heartbeat_age": round(age, 3)}


class Checks(Protocol):
    """What a daemon's probes answer: ``ready``'s body lists its red ``reasons``."""

    def health(self) -> Verdict: ...

    def ready(self) -> Verdict: ...

    def metrics(self) -> bytes:
        """Prometheus text."""
        ...


def check_routes(checks: Checks) -> dict[str, Route]:
    """``/health`` (status ``ok`` or ``unavailable``), ``/ready`` (``ok`` or ``not_ready:
    <first reason>``) and ``/metrics`` of ``checks``."""

    def health() -> Response:
        ok, body = checks.health()
        return json_response(ok, {**body, "status": "ok" if ok else "unavailable"})

    def ready() -> Response:
        ok, body = checks.ready()
        return json_response(ok, {**body, "status": not_ready(body["reasons"])})

    return {
        "/health": health,
        "/ready": ready,
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, checks.metrics()),
    }


class Closeable(Protocol):
    def close(self) -> None: ...


Connection = TypeVar("Connection", bound=Closeable)
T = TypeVar("T")


class KeptConnection(Generic[Connection]):
    """The one connection a daemon's checks read through, shared by the server's threads
    (one read at a time): opened on first use, and dropped when a read through it fails,
    so the next probe opens a new one instead of failing on a broken one for ever."""

    def __init__(self, open_connection: Callable[[], Connection]) -> None:
        self._open = open_connection
        self._connection: Connection | None = None
        self._lock = threading.Lock()  # the HTTP server answers on several threads

    def read(self, read: Callable[[Connection], T]) -> T:
        """``read(connection)``; what it raises is raised, the connection dropped."""
        with self._lock:
            if self._connection is None:
                self._connection = self._open()
            try:
                return read(self._connection)
            except Exception:
                self._drop()
                raise

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # it may be broken already
                self._connection.close()
            self._connection = None


class ProbeServer(ThreadingHTTPServer):
    """Serves ``routes`` (path → check) with bounded threads and per-connection timeouts."""

    daemon_threads = True
    request_queue_size = 64  # the listen backlog: refusals are answered, not left in SYN

    def __init__(
        self,
        address: tuple[str, int],
        routes: Mapping[str, Route],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.routes = dict(routes)
        self._slots = threading.BoundedSemaphore(max_connections)
        # StreamRequestHandler sets its class's ``timeout`` on each connection's socket.
        handler = type("ProbeHandler", (_Handler,), {"timeout": timeout})
        super().__init__(address, handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        try:
            request.settimeout(0.1)  # never let a full client buffer stall the accept loop
            request.sendall(_BUSY)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)


class _DeadlineReader(io.RawIOBase):
    """Reads the socket until ``deadline`` (monotonic): each read waits at most what is
    left, so the socket timeout bounds the whole request, not just each read."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took too long")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: ProbeServer

    def setup(self) -> None:
        super().setup()
        assert self.timeout is not None  # set by ProbeServer
        deadline = time.monotonic() + self.timeout
        self.rfile.close()  # the plain reader; the socket stays open
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline))

    def do_GET(self) -> None:
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            self._send((404, "application/json", b'{"status": "not_found"}'))
            return
        try:
            response = route()
        except Exception:
            log.exception("probe %s failed", self.path)
            response = (500, "application/json", b'{"status": "error"}')
        self._send(response)

    def _send(self, response: Response) -> None:
        status, content_type, body = response
        self.connection.settimeout(self.timeout)  # the reads may have left it shorter
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes hit every few seconds: only at debug level."""
        log.debug("http: " + format, *args)


class CannotListen(ConfigurationError):
    """The probe server's address cannot be bound (taken, or not this machine's); the
    message names the variables that set it."""


def start_probe_server(
    routes: Mapping[str, Route],
    host: str,
    port: int,
    *,
    name: str,
    variables: tuple[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> ProbeServer:
    """Bind (``port=0``: any free port) and serve on a daemon thread named ``name``;
    ``shutdown()`` then ``server_close()`` stop it. :class:`CannotListen` names
    ``variables`` (the host's and the port's) when the address cannot be bound: two
    replicas on one host with the same port, say."""
    try:
        server = ProbeServer((host, port), routes, timeout=timeout, max_connections=max_connections)
    except OSError as exc:
        where = f"{host}:{port} ({', '.join(variables)})"
        raise CannotListen(f"cannot listen on {where}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def serve_checks(
    checks: Checks,
    host: str,
    port: int,
    *,
    name: str,
    variables: tuple[str, str],
    **limits: Any,
) -> ProbeServer:
    """:func:`start_probe_server` with :func:`check_routes`; ``limits``: ``timeout``,
    ``max_connections``."""
    return start_probe_server(
        check_routes(checks), host, port, name=name, variables=variables, **limits
    )


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "CannotListen",
    "Checks",
    "KeptConnection",
    "ProbeServer",
    "Response",
    "Route",
    "Verdict",
    "check_routes",
    "heartbeat_health",
    "json_response",
    "not_ready",
    "serve_checks",
    "start_probe_server",
]
