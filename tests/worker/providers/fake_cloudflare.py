"""A stand-in for Cloudflare's DNS records API served over a real loopback socket.

It implements the four calls the provider makes (list by name/type, create, delete)
with Cloudflare's response envelope, token check and "already exists" error, and can be
told to answer the next requests with a given status to test error mapping.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

ZONE_ID = "zone-0123456789"
TOKEN = "cf-test-token-abcdef"


@dataclass
class FakeCloudflare:
    base_url: str = ""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    forced: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (and a Cloudflare error body)."""
        self.forced.extend(statuses)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r["name"] == name]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output stays readable."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        with api.lock:
            api.requests.append((self.command, url.path))
            if api.forced:
                status = api.forced.pop(0)
                return self._reply(status, None, [{"code": 10000 + status, "message": "forced"}])
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(403, None, [{"code": 10000, "message": "Authentication error"}])
        prefix = f"/client/v4/zones/{ZONE_ID}/dns_records"
        if not url.path.startswith(prefix):
            return self._reply(404, None, [{"code": 7003, "message": "No route"}])
        record_id = url.path[len(prefix) :].strip("/")
        with api.lock:
            if self.command == "GET" and not record_id:
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                found = [
                    r
                    for r in api.records.values()
                    if r["name"] == query.get("name") and r["type"] == query.get("type")
                ]
                return self._reply(200, found)
            if self.command == "POST" and not record_id:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if any(r["name"] == body["name"] and r["type"] == body["type"]
                       for r in api.records.values()):  # fmt: skip
                    return self._reply(400, None, [{"code": 81053, "message": "exists"}])
                record = {"id": uuid.uuid4().hex, **body}
                api.records[record["id"]] = record
                return self._reply(200, record)
            if self.command == "DELETE" and record_id:
                if api.records.pop(record_id, None) is None:
                    return self._reply(404, None, [{"code": 81044, "message": "not found"}])
                return self._reply(200, {"id": record_id})
        return self._reply(405, None, [{"code": 10405, "message": "method not allowed"}])

    def _reply(self, status: int, result: Any, errors: list[dict[str, Any]] | None = None) -> None:
        payload = {"success": not errors, "errors": errors or [], "messages": [], "result": result}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FakeCloudflare


@pytest.fixture(scope="session")
def cloudflare_api() -> Iterator[FakeCloudflare]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.api = FakeCloudflare(base_url=f"http://127.0.0.1:{server.server_address[1]}/client/v4")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.api
    finally:
        server.shutdown()
        server.server_close()
