"""A real webhook receiver for the delivery tests: an HTTP server on a thread of its own.

Every request is verified with the ``standardwebhooks`` package (the receivers' own
library), against each secret the test gives, one at a time, and recorded in arrival
order: its ``webhook-id``, its body, which secrets verify it, and what was answered.
What it answers is scripted per request (:meth:`Receiver.script`, consumed in order;
then :attr:`Receiver.default`): a status, a ``Retry-After``, or a hang (no answer until
:meth:`Receiver.release` or the hang's time is up). :meth:`Receiver.down` stops it
listening (connections refused) and :meth:`Receiver.up` listens again on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Answer:
    status: int = 200
    retry_after: str | None = None
    hang: float = 0.0  # seconds to wait before answering (released early by release())


@dataclass(frozen=True)
class Received:
    webhook_id: str
    body: bytes
    verified: tuple[bool, ...]  # per secret given to the receiver, in its order
    answered: Answer
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """Answered 2xx at once (a hung answer comes after the sender gave up)."""
        return 200 <= self.answered.status < 300 and not self.answered.hang

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = list(secrets)
        self.default = Answer()
        # Decides the answer from the event (the parsed body) before the script does;
        # None from it: the script's (or the default) answer.
        self.rule: Callable[[dict[str, Any]], Answer | None] | None = None
        self.received: list[Received] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    # --- scripting --------------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def release(self) -> None:
        """Answer every hanging request now."""
        self._release.set()

    def _next_answer(self, body: bytes) -> Answer:
        rule = self.rule
        if rule is not None:
            ruled = rule(json.loads(body))
            if ruled is not None:
                return ruled
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # --- what arrived -----------------------------------------------------------------

    def _record(self, received: Received) -> None:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> list[Received]:
        """The requests answered 2xx, in order."""
        return [r for r in self.snapshot() if r.ok]

    def delivered_ids(self) -> list[str]:
        return [r.webhook_id for r in self.delivered()]

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "requests") -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.received)):
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(r.webhook_id, r.answered.status) for r in self.received]
                    raise AssertionError(f"timed out waiting for {what}; got {got}")
                self._changed.wait(min(left, 0.1))

    def wait_count(self, count: int, timeout: float = 30.0) -> list[Received]:
        self.wait_for(lambda got: len(got) >= count, timeout, f"{count} requests")
        return self.snapshot()

    def wait_delivered(self, count: int, timeout: float = 30.0) -> list[str]:
        self.wait_for(
            lambda got: len([r for r in got if r.ok]) >= count,
            timeout,
            f"{count} deliveries",
        )
        return self.delivered_ids()

    # --- listening --------------------------------------------------------------------

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = tuple(_verifies(secret, body, headers) for secret in receiver.secrets)
                answer = receiver._next_answer(body)
                if answer.hang:
                    receiver._record(
                        Received(headers.get("webhook-id", ""), body, verified, answer)
                    )
                    receiver._release.wait(answer.hang)
                    self._answer(answer)
                    return
                receiver._record(Received(headers.get("webhook-id", ""), body, verified, answer))
                self._answer(answer)

            def _answer(self, answer: Answer) -> None:
                try:
                    self.send_response(answer.status)
                    if answer.retry_after is not None:
                        self.send_header("Retry-After", answer.retry_after)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the daemon gave up (timeout) or was killed meanwhile

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()

    def down(self) -> None:
        """Stop listening: connections are refused until :meth:`up`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.release()
        self.down()


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


__all__ = ["Answer", "Received", "Receiver"]
