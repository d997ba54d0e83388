"""No request body larger than the limit reaches the application.

:class:`BodyLimit` is pure ASGI and the outermost middleware, so it answers before
sessions, metrics, routing and authentication see the request: a body whose declared
``Content-Length`` is past the limit is refused at once, unread; any other body (chunked,
or declared within the limit) is read, up to the limit and no further, before the
application runs, and refused as soon as it passes it. Either way the answer is 413
``application/problem+json`` and the connection is closed, so the rest of the body is
never read. What the application then reads is the buffered body: it never holds more
than the limit of one request in memory.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from a4c_api import problems


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        body: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was complete: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = problems.problem(
            413, f"the request body is larger than {self.max_bytes} bytes", kind="body-too-large"
        )
        # The rest of the body stays unread: the connection cannot carry another request.
        refusal.headers["Connection"] = "close"
        await problems.answer(refusal)(scope, receive, send)


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
