"""The front door's edges: what one request may cost, and what metrics it may add.

Served in-process (``create_app`` on a free port, an empty SQLite store, Temporal
unreachable): every check here answers before anything is read or asked of Temporal.
A body past ``API_MAX_BODY_BYTES`` is refused with 413 problem+json before it is read
and before authentication, whether its length is declared or it is streamed in chunks;
the invitee pages read only small ``application/x-www-form-urlencoded`` forms (415
otherwise, so a multipart upload is never parsed or spooled); metric labels come from
fixed sets whatever method a client sends; and ``/metrics`` is not on the front door.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from tests.api.conftest import A4C_API
from tests.servers.http import ServedApp, serve_asgi
from tests.support import free_port

from a4c_api.app import create_app
from a4c_api.cli import server_config
from a4c_api.observability import KNOWN_METHODS, UNKNOWN_METHOD, serve_metrics
from a4c_api.pages.forms import MAX_FORM_BYTES, MAX_FORM_FIELDS
from a4c_api.pages.paths import SIGN_IN_DEV_PATH, SIGN_OUT_PATH
from a4c_api.problems import PROBLEM_JSON
from a4c_api.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, load_settings
from a4c_projector.eventlog.store import open_event_store
from a4c_worker.config import ACCEPT_PATH

# Long enough for a server that waits for a body it was promised to show it (the
# test fails with a timeout instead of hanging); an answer comes well before it.
SOCKET_TIMEOUT = 10.0
DECLARED = 200 * 1000 * 1000  # the review's 200 MB body, declared but never sent


@dataclass
class FrontDoor:
    app: FastAPI
    served: ServedApp

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def raw(self, request: bytes) -> bytes:
        """Send ``request`` as is on a fresh connection; the answer's bytes until the
        server closes the connection or has sent a whole answer's head and body."""
        host, port = self.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT) as conn:
            conn.sendall(request)
            return _read_answer(conn)

    def requests_series(self) -> list[dict[str, str]]:
        """The labels of every ``a4c_api_requests_total`` series the app holds."""
        return [
            sample.labels
            for family in self.app.state.metrics.registry.collect()
            for sample in family.samples
            if sample.name == "a4c_api_requests_total"
        ]


def _read_answer(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _status_and_body(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ")[1]), headers, body


@pytest.fixture(scope="module")
def front_door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    folder = tmp_path_factory.mktemp("edge")
    store = open_event_store(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "e.db")}
    )
    settings = load_settings(
        {
            "API_MODE": "development",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens
        }
    )
    app = create_app(settings, store.location)
    with serve_asgi(app) as served:
        yield FrontDoor(app, served)


# --- request bodies ---------------------------------------------------------------------


def largest_onboarding() -> bytes:
    """The largest onboarding request the API admits: 200 invitees (the most one request
    may carry), every field at its longest, every letter outside the BMP and sent as a
    JSON ``\\u`` escape pair (as ``json.dumps`` does by default), pretty-printed. The
    default ``API_MAX_BODY_BYTES`` is sized from it."""
    letter = "\U00020000"  # a CJK letter: 4 bytes of UTF-8, 12 as two JSON escapes
    label = "a" * 63
    domain = ".".join([label] * 3) + "." + "b" * 61  # 253 characters
    invitees = [
        {
            # 64 bytes before the @ (16 letters), 189 after it: 254, the most there is.
            "email": letter * 16
            + f"@{i:03d}."
            + "c" * 63
            + "."
            + "d" * 63
            + "."
            + "e" * 49
            + ".example",
            "role": "viewer",
            "first_name": letter * 100,
            "last_name": letter * 100,
        }
        for i in range(200)
    ]
    request: dict[str, Any] = {
        "name": letter * 200,
        "slug": "s" * 63,
        "org_type": "provider",
        "parent_id": str(uuid.uuid4()),
        "tags": [f"{i:02d}" + "t" * 61 for i in range(20)],
        "domain": domain,
        "invitees": invitees,
        "timing": {
            "propagation_wait_seconds": 86400.0,
            "dns_verify_attempts": 50,
            "dns_verify_initial_interval_seconds": 86400.0,
            "invitation_ttl_seconds": 31536000.0,
            "reminder_before_seconds": 31535999.0,
        },
    }
    return json.dumps(request, indent=2).encode()


def test_the_largest_real_request_is_valid_and_within_the_default_limit() -> None:
    from a4c_api.v1.models import OnboardRequest

    body = largest_onboarding()
    OnboardRequest.model_validate_json(body)  # a request the API would take
    assert len(body) <= DEFAULT_MAX_BODY_BYTES, f"{len(body)} bytes"


def test_the_largest_real_request_passes_the_limit(front_door: FrontDoor) -> None:
    answer = httpx.post(
        front_door.base_url + "/v1/organizations",
        content=largest_onboarding(),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 401, answer.text  # on to authentication, not refused


def test_a_huge_declared_body_is_refused_before_it_is_read(front_door: FrontDoor) -> None:
    """Only the head and two bytes of a 200 MB body are sent: the 413 comes back anyway,
    so the server neither waited for the rest nor asked who is calling."""
    answer = front_door.raw(
        b"POST /v1/organizations HTTP/1.1\r\nHost: a4c\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {DECLARED}\r\n\r\n".encode()
        + b"{}"
    )
    status, headers, body = _status_and_body(answer)
    assert status == 413, answer[:300]
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 413
    assert problem["type"] == "urn:a4c:problem:body-too-large"
    assert str(front_door.app.state.settings.api_max_body_bytes) in problem["detail"]


def test_a_chunked_body_is_refused_once_it_passes_the_limit(front_door: FrontDoor) -> None:
    """No length declared: the body streams in chunks, one byte past the limit."""
    limit = front_door.app.state.settings.api_max_body_bytes
    chunks = [b"1" * (limit // 2), b"2" * (limit - limit // 2), b"3"]  # the last one too many
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    answer = front_door.raw(
        b"POST /v1/organizations HTTP/1.1\r\nHost: a4c\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + encoded
    )
    status, headers, body = _status_and_body(answer)
    assert status == 413, answer[:300]
    assert headers["content-type"] == PROBLEM_JSON
    assert json.loads(body)["type"] == "urn:a4c:problem:body-too-large"


def test_a_chunked_body_within_the_limit_goes_on(front_door: FrontDoor) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "Acme", '
        yield b'"slug": "acme", "org_type": "provider"}'

    answer = httpx.post(
        front_door.base_url + "/v1/organizations",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 401, answer.text


def test_a_body_that_stops_arriving_is_refused_not_waited_for(tmp_path: Path) -> None:
    """The head and one chunk of a chunked body, then nothing: the server does not hold
    the connection (and what it buffered) until the client goes, it answers 408 once
    ``API_BODY_TIMEOUT_SECONDS`` has passed, well before this socket's own timeout."""
    store = open_event_store(
        {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "e.db")}
    )
    settings = load_settings(
        {
            "API_MODE": "development",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens
            "API_BODY_TIMEOUT_SECONDS": "0.5",
        }
    )
    assert settings.api_body_timeout_seconds * 4 < SOCKET_TIMEOUT
    with serve_asgi(create_app(settings, store.location)) as served:
        stalled = FrontDoor(FastAPI(), served).raw(
            b"POST /v1/organizations HTTP/1.1\r\nHost: a4c\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"10\r\n" + b"x" * 16 + b"\r\n"  # and never the final chunk
        )
    status, headers, body = _status_and_body(stalled)
    assert status == 408, stalled[:300]
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["connection"] == "close"
    assert json.loads(body)["type"] == "urn:a4c:problem:body-timeout"


def test_the_server_takes_at_most_api_max_connections_at_once() -> None:
    """Past the limit uvicorn answers 503 at once rather than holding every connection
    (and its buffered body) a client opens."""
    settings = load_settings({"API_MODE": "development", "API_MAX_CONNECTIONS": "7"})
    assert server_config(FastAPI(), settings).limit_concurrency == 7
    default = load_settings({"API_MODE": "development"})
    assert server_config(FastAPI(), default).limit_concurrency == DEFAULT_MAX_CONNECTIONS


@pytest.mark.parametrize("path", [ACCEPT_PATH, SIGN_IN_DEV_PATH, SIGN_OUT_PATH])
def test_the_pages_refuse_a_multipart_upload_unparsed(front_door: FrontDoor, path: str) -> None:
    """A file posted to a page is refused for its type (415), before any of it is
    parsed: not even its (broken) multipart framing is looked at, so nothing of it is
    spooled anywhere."""
    upload = httpx.post(
        front_door.base_url + path,
        data={"csrf": "x", "invitation_id": "y"},
        files={"file": ("big.bin", secrets.token_bytes(64 * 1024), "application/octet-stream")},
    )
    assert upload.status_code == 415, upload.text[:300]
    assert upload.headers["content-type"] == PROBLEM_JSON
    broken = httpx.post(
        front_door.base_url + path,
        content=b"--no-such-boundary\r\nnot a part",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 415, broken.text[:300]


def test_the_pages_refuse_json_and_untyped_bodies(front_door: FrontDoor) -> None:
    for headers in ({"Content-Type": "application/json"}, {}):
        answer = httpx.post(front_door.base_url + ACCEPT_PATH, content=b"{}", headers=headers)
        assert answer.status_code == 415, answer.text[:300]


def test_the_pages_refuse_a_form_past_a_handful_of_small_fields(front_door: FrontDoor) -> None:
    url = front_door.base_url + ACCEPT_PATH
    many = httpx.post(url, data={f"f{i}": "v" for i in range(MAX_FORM_FIELDS + 1)})
    assert many.status_code == 400, many.text[:300]
    assert many.headers["content-type"] == PROBLEM_JSON
    big = httpx.post(url, data={"csrf": "x" * MAX_FORM_BYTES})
    assert big.status_code == 413, big.text[:300]
    assert big.headers["content-type"] == PROBLEM_JSON


def test_the_pages_still_read_their_own_forms(front_door: FrontDoor) -> None:
    """The page's form, urlencoded as a browser posts it: on to the CSRF check."""
    answer = httpx.post(
        front_door.base_url + ACCEPT_PATH,
        data={"csrf": "forged", "invitation_id": str(uuid.uuid4())},
    )
    assert answer.status_code == 403  # the CSRF page: the form was read
    assert "text/html" in answer.headers["content-type"]


# --- metrics --------------------------------------------------------------------------


def test_any_method_token_adds_no_series(front_door: FrontDoor) -> None:
    """h11 takes any token as a method; labels come from fixed sets whatever is sent."""
    with httpx.Client(base_url=front_door.base_url) as client:
        client.request("SURPRISE0", "/health")
        before = len(front_door.requests_series())
        for _ in range(25):
            client.request("X" + secrets.token_hex(6).upper(), "/health")
            client.request("Q" + secrets.token_hex(6).upper(), f"/no/{secrets.token_hex(4)}")
        client.request("GET", "/health")
        client.request("BREW", "/v1/organizations")
    series = front_door.requests_series()
    assert {s["method"] for s in series} <= KNOWN_METHODS | {UNKNOWN_METHOD}, series
    # At most three new: /health and /v1/organizations with "other", and unmatched paths.
    assert len(series) <= before + 3, series
    templates = {route.path_format for route in iter_route_contexts(front_door.app.router.routes)}
    assert {s["route"] for s in series} <= templates | {"(unmatched)"}, series


def test_routes_are_labelled_by_their_template(front_door: FrontDoor) -> None:
    """An included router's routes too (/v1, the pages): not lumped into (unmatched)."""
    slug = f"s{secrets.token_hex(6)}"
    httpx.get(front_door.base_url + f"/v1/organizations/{slug}")
    httpx.get(front_door.base_url + ACCEPT_PATH)
    series = front_door.requests_series()
    labelled = {(s["route"], s["method"], s["status"]) for s in series}
    assert ("/v1/organizations/{slug}", "GET", "401") in labelled, series
    assert (ACCEPT_PATH, "GET", "404") in labelled, series  # no invitation in this session
    assert not [s for s in series if slug in s["route"]]


def test_the_front_door_does_not_serve_metrics(front_door: FrontDoor) -> None:
    answer = httpx.get(front_door.base_url + "/metrics")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert "a4c_api_requests" not in answer.text


def test_metrics_are_served_on_a_listener_of_their_own(front_door: FrontDoor) -> None:
    httpx.get(front_door.base_url + "/health")
    server = serve_metrics(front_door.app.state.metrics, "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{server.port}"
        scraped = httpx.get(base + "/metrics")
        assert scraped.status_code == 200
        assert 'a4c_api_requests_total{method="GET",route="/health",status="200"}' in scraped.text
        assert httpx.get(base + "/v1/organizations").status_code == 404  # metrics only
    finally:
        server.shutdown()
        server.server_close()


def test_run_names_the_metrics_port_it_cannot_listen_on(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        done = subprocess.run(
            [A4C_API, "run"],
            env={
                **os.environ,
                "API_MODE": "development",
                "API_PORT": str(free_port()),
                "API_METRICS_PORT": str(busy),
                "SQLITE_DBNAME": str(tmp_path / "e.db"),
                "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{busy} (API_METRICS_HOST, API_METRICS_PORT)" in (
        done.stderr
    )
