"""No request body larger than the limit reaches the application.

:class:`BodyLimit` is pure ASGI and the outermost middleware, so it answers before
sessions, metrics, routing and authentication see the request: a body whose declared
``Content-Length`` is past the limit is refused at once, unread; any other body (chunked,
or declared within the limit) is read, up to the limit and no further, before the
application runs, and refused as soon as it passes it. Either way the answer is 413
``application/problem+json`` and the connection is closed, so the rest of the body is
never read. What the application then reads is the buffered body: it never holds more
than the limit of one request in memory. A body that has not arrived whole within the
timeout is refused the same way with 408, so a client that stops sending does not hold
the connection and what was buffered of its body for as long as it stays connected.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a4c_api import problems


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, self._too_large())
            return
        try:
            async with asyncio.timeout(self.timeout_seconds):
                body = await self._read(receive)
        except _TooLarge:
            await self._refuse(scope, receive, send, self._too_large())
            return
        except TimeoutError:
            late = problems.problem(
                408,
                f"the request body did not arrive within {self.timeout_seconds:g} seconds",
                kind="body-timeout",
            )
            await self._refuse(scope, receive, send, late)
            return
        if body is None:
            return  # the client left before its body was complete: nobody to answer
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body; ``None`` if the client left first."""
        body: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            body.append(chunk)
            if not message.get("more_body", False):
                return b"".join(body)

    def _too_large(self) -> problems.ProblemError:
        return problems.problem(
            413, f"the request body is larger than {self.max_bytes} bytes", kind="body-too-large"
        )

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, refusal: problems.ProblemError
    ) -> None:
        # The rest of the body stays unread: the connection cannot carry another request.
        refusal.headers["Connection"] = "close"
        await problems.answer(refusal)(scope, receive, send)


class _TooLarge(Exception):
    """The body passed the limit while it was read."""


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the application: the whole body once, then the server's own
    (which tells of a disconnect)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
