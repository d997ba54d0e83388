"""What the daemons' probes share (a4c_service.probes): the three routes over their
checks, and the one database connection the checks keep, reopened after a failure."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from a4c_service.probes import (
    KeptConnection,
    ProbeServer,
    Verdict,
    heartbeat_health,
    serve_checks,
)


class Checks:
    """Checks a test sets: red or green, reasons, a metrics text."""

    def __init__(self) -> None:
        self.alive = True
        self.reasons: list[str] = []

    def health(self) -> Verdict:
        return self.alive, {"heartbeat_age": 0.1}

    def ready(self) -> Verdict:
        return not self.reasons, {"active": True, "reasons": list(self.reasons)}

    def metrics(self) -> bytes:
        return b"a4c_example 1.0\n"


@pytest.fixture
def served() -> Iterator[tuple[Checks, ProbeServer]]:
    checks = Checks()
    server = serve_checks(checks, "127.0.0.1", 0, name="test-probes", variables=("H", "P"))
    yield checks, server
    server.shutdown()
    server.server_close()


def get(server: ProbeServer, path: str) -> tuple[int, str, bytes]:
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def body(answer: tuple[int, str, bytes]) -> tuple[int, dict[str, Any]]:
    status, content_type, text = answer
    assert content_type == "application/json"
    return status, json.loads(text)


def test_health_and_ready_answer_with_the_checks_status(
    served: tuple[Checks, ProbeServer],
) -> None:
    checks, server = served
    assert body(get(server, "/health")) == (200, {"heartbeat_age": 0.1, "status": "ok"})
    assert body(get(server, "/ready")) == (
        200,
        {"active": True, "reasons": [], "status": "ok"},
    )
    checks.alive = False
    checks.reasons = ["standby", "heartbeat_stale"]
    assert body(get(server, "/health")) == (503, {"heartbeat_age": 0.1, "status": "unavailable"})
    status, ready = body(get(server, "/ready"))
    assert (status, ready["status"], ready["reasons"]) == (
        503,
        "not_ready: standby",
        ["standby", "heartbeat_stale"],
    )


def test_metrics_are_prometheus_text_and_other_paths_not_found(
    served: tuple[Checks, ProbeServer],
) -> None:
    _, server = served
    status, content_type, text = get(server, "/metrics?x=1")
    assert (status, text) == (200, b"a4c_example 1.0\n")
    assert content_type.startswith("text/plain; version=")
    assert get(server, "/nothing")[0] == 404


def test_heartbeat_health_is_red_once_the_beat_is_too_old() -> None:
    ok, fields = heartbeat_health(time.monotonic() - 0.5, max_age=2.0)
    assert ok and 0.5 <= fields["heartbeat_age"] < 2.0
    ok, fields = heartbeat_health(time.monotonic() - 3.0, max_age=2.0)
    assert not ok and fields["heartbeat_age"] >= 3.0


class Connection:
    def __init__(self, number: int, closing_fails: bool = False) -> None:
        self.number = number
        self.closed = False
        self.closing_fails = closing_fails

    def close(self) -> None:
        self.closed = True
        if self.closing_fails:
            raise OSError("already broken")


def test_the_kept_connection_is_opened_once_and_reopened_after_a_failed_read() -> None:
    opened: list[Connection] = []

    def open_connection() -> Connection:
        opened.append(Connection(len(opened) + 1, closing_fails=not opened))
        return opened[-1]

    kept = KeptConnection(open_connection)
    assert opened == []  # nothing until the first probe
    assert kept.read(lambda c: c.number) == 1
    assert kept.read(lambda c: c.number) == 1

    def fail(connection: Connection) -> int:
        raise ConnectionError("the server went away")

    with pytest.raises(ConnectionError):
        kept.read(fail)
    assert opened[0].closed  # dropped, its close's own failure swallowed
    assert kept.read(lambda c: c.number) == 2
    kept.close()
    assert opened[1].closed and len(opened) == 2
    kept.close()  # nothing left to close
