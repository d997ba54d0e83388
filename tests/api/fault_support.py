"""What the API's fault tests share: the answer a fault must get (503 with
``Retry-After``, within a bound), an API over one projected organization, and a TCP
proxy to PostgreSQL the test can cut or stall (the shared server at 127.0.0.1:5432 is
never stopped)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass

import httpx
import psycopg
from temporalio.testing import WorkflowEnvironment
from tests.api.v1_support import assert_problem
from tests.servers.http import serve_asgi

from a4c_api.app import create_app
from a4c_api.cli import new_key
from a4c_api.settings import load_settings
from a4c_domain import OnboardingApplication
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.readmodel.tables import ensure_schema

# No answer during a fault may take longer than this (seconds): a read is given up on
# after 3 s, a Temporal call after about 1.5 s of retries (a4c_api.gateway).
BOUND = 5.0


def assert_unavailable(response: httpx.Response, *, page: bool = False) -> None:
    """A 503 saying when to try again: problem+json from /v1, an HTML page from pages."""
    assert response.status_code == 503, (response.request.url, response.status_code, response.text)
    assert int(response.headers["Retry-After"]) >= 1, response.headers
    if not page:
        body = assert_problem(response, 503)
        assert body["type"] == "urn:a4c:problem:unavailable", body


def assert_no_other_5xx(responses: list[httpx.Response]) -> None:
    for response in responses:
        if response.status_code >= 500:
            page = not response.request.url.path.startswith("/v1")
            assert_unavailable(response, page=page)


async def timed(request: Awaitable[httpx.Response], bound: float = BOUND) -> httpx.Response:
    began = time.monotonic()
    response = await request
    took = time.monotonic() - began
    assert took < bound, f"{response.request.url} answered after {took:.1f} s"
    return response


class Proxy:
    """A TCP proxy to the shared PostgreSQL: :meth:`cut` ends every connection through
    it and refuses new ones (closing them at once) until :meth:`restore`; :meth:`stall`
    keeps every connection open but carries nothing (a server stopped with SIGSTOP, a
    stuck middlebox: the kernel still acknowledges, so TCP never notices)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.up = True
        self.flowing = threading.Event()
        self.flowing.set()
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="pg-proxy").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            live = list(self.sockets)
        for s in live:
            self._close(s)

    def stall(self) -> None:
        self.flowing.clear()

    def restore(self) -> None:
        self.up = True
        self.flowing.set()

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        self.cut()
        self.listener.close()


@dataclass(frozen=True)
class OneOrganizationApi:
    """a4c-api serving one active organization, projected, and its admin key."""

    base_url: str
    store: EventStore
    slug: str
    headers: dict[str, str]


@contextlib.contextmanager
def one_organization_api(
    env: dict[str, str], temporal_env: WorkflowEnvironment, slug: str
) -> Iterator[OneOrganizationApi]:
    """Register and activate ``slug`` in ``env``'s store, project it, and serve the API
    (development mode, on ``temporal_env``) in a thread until the block ends."""
    app = OnboardingApplication(env)
    store = open_event_store(env)
    try:
        with connect(store.location) as db:
            ensure_schema(db)
        org = app.register_organization(name="Faulty", slug=slug, org_type="provider")
        app.activate(organization_id=org.id)
        projector = Projector(store.location, store.mapper)
        try:
            projector.catch_up()
        finally:
            projector.close()
        key, grant = new_key("faulty", org.id)
        settings = load_settings(
            {
                "API_MODE": "development",
                "API_KEYS": grant.entry(),
                "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
                "TEMPORAL_TASK_QUEUE": f"a4c-faulty-{uuid.uuid4().hex[:8]}",
            }
        )
        with serve_asgi(create_app(settings, store.location)) as api:
            yield OneOrganizationApi(api.base_url, store, slug, {"Authorization": f"Bearer {key}"})
    finally:
        app.close()


def end_read_connections(admin: psycopg.Connection[tuple[object, ...]], store: EventStore) -> int:
    """``pg_terminate_backend`` on every read-model connection of the API over ``store``;
    how many it ended."""
    ended = admin.execute(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
        "FROM pg_stat_activity WHERE application_name = %s",
        (store.location.application_name("read"),),
    ).fetchone()
    assert ended is not None
    return int(str(ended[0]))
