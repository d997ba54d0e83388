"""A TCP proxy between a client and PostgreSQL that loses one commit's answer.

Armed with a marker (bytes the client sends to commit: ``COMMIT``, or the call of the
insert function, which commits on its own in autocommit mode), it relays that client
message to the server and waits for the server's answer — so the server has committed
— then drops the answer and closes the client's side: the client's commit outcome is
unknown, as when a primary dies at COMMIT. Or (``deliver=False``) it drops the message
itself: nothing was committed, and the client cannot tell that either. Optionally the
server then stays away for a while (``outage``): every connection is dropped, new ones
are refused. Everything else is relayed untouched; one cut per arming.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Cut:
    deliver: bool  # the server gets the commit (and commits) or not
    outage: float  # seconds without a server after the cut
    done: threading.Event


class CutProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._lock = threading.Lock()
        self._marker: bytes | None = None
        self._cut = Cut(deliver=True, outage=0.0, done=threading.Event())
        self._down_until = 0.0  # no server until then (time.monotonic)
        self._sockets: list[socket.socket] = []
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes, *, deliver: bool = True, outage: float = 0.0) -> None:
        """Cut the next connection that sends ``marker`` (see the module's notes)."""
        with self._lock:
            self._marker = marker
            self._cut = Cut(deliver, outage, threading.Event())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.close()
        self._drop_all()

    def _drop_all(self) -> None:
        # shutdown, not only close: another thread may be blocked reading the socket.
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            cut: list[Cut] = []  # this connection's cut, once it happens
            threading.Thread(target=self._up, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, cut), daemon=True).start()

    def _take_marker(self, chunk: bytes) -> Cut | None:
        with self._lock:
            if self._marker is None or self._marker not in chunk:
                return None
            self._marker = None
            self.cuts += 1
            return self._cut

    def _start_outage(self, cut: Cut) -> None:
        if cut.outage:
            self._down_until = time.monotonic() + cut.outage
            self._drop_all()
        cut.done.set()

    def _up(self, client: socket.socket, server: socket.socket, cut: list[Cut]) -> None:
        """Client to server. On the marker: deliver it and what follows (a Sync may come
        apart from its Execute) until the server answers; or drop it and cut now."""
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                found = None if cut else self._take_marker(chunk)
                if found is not None:
                    cut.append(found)
                    if not found.deliver:
                        for sock in (client, server):
                            sock.shutdown(socket.SHUT_RDWR)
                        self._start_outage(found)
                        return
                server.sendall(chunk)

    def _down(self, server: socket.socket, client: socket.socket, cut: list[Cut]) -> None:
        with contextlib.suppress(OSError):
            while chunk := server.recv(65536):
                if cut:  # the commit's answer: the server has committed; drop it
                    break
                client.sendall(chunk)
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        if cut and cut[0].deliver:
            self._start_outage(cut[0])
