"""What the routes use to reach the rest of a4c: Temporal for writes, the read models for reads.

The only seam between the HTTP layer and the system: a route never opens a connection
itself. Writes are workflow starts and updates through ``a4c_worker.client``; reads are
``a4c_projector.queries.ReadModel`` calls, run in a worker thread on a connection of
that thread's own (connections are not shared between threads; there are at most as
many as the thread pool has threads, and all are closed at shutdown).

Read-your-writes: after a write, :meth:`Gateway.catch_up` waits (at most
``API_CONSISTENCY_TIMEOUT``) until the projection has applied everything the event
store held when the write returned, so the answer, and the caller's next GET, show it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from temporalio.client import Client

from a4c_api.problems import problem
from a4c_projector.queries import Location, ProjectionTimeout, ReadModel
from a4c_worker.client import connect
from a4c_worker.connection import TemporalConnection, connect_failure

T = TypeVar("T")
log = logging.getLogger(__name__)

# How long to wait between attempts to reach Temporal while it is not up yet (seconds).
CONNECT_RETRY_MAX = 5.0


class Gateway:
    def __init__(
        self,
        location: Location,
        *,
        temporal: TemporalConnection,
        task_queue: str,
        consistency_timeout: float,
    ) -> None:
        self.location = location
        self.temporal = temporal
        self.task_queue = task_queue
        self.consistency_timeout = consistency_timeout
        self._client: Client | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._local = threading.local()
        self._opened: list[ReadModel] = []
        self._lock = threading.Lock()

    # --- Temporal ----------------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting to Temporal in the background (the service starts, and says
        it is not ready, while Temporal is down)."""
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        pause = 0.2
        while self._client is None:
            try:
                self._client = await connect(self.temporal)
            except RuntimeError as exc:  # the SDK's "Failed client connect"
                log.warning("%s (retrying)", connect_failure(self.temporal, exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, CONNECT_RETRY_MAX)

    @property
    def client(self) -> Client:
        """The Temporal client; a 503 problem while it is not connected."""
        if self._client is None:
            raise problem(503, "the workflow service is not reachable yet", kind="unavailable")
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None

    # --- read models -------------------------------------------------------------------

    def _read_model(self) -> ReadModel:
        found: ReadModel | None = getattr(self._local, "read_model", None)
        if found is None:
            found = ReadModel(self.location)
            self._local.read_model = found
            with self._lock:
                self._opened.append(found)
        return found

    def _forget(self) -> None:
        """Drop this thread's connection after an error (it may be broken)."""
        found: ReadModel | None = getattr(self._local, "read_model", None)
        if found is not None:
            self._local.read_model = None
            with self._lock:
                if found in self._opened:
                    self._opened.remove(found)
            try:
                found.close()
            except Exception:
                log.debug("closing a broken read-model connection failed", exc_info=True)

    def _call(self, query: Callable[[ReadModel], T]) -> T:
        try:
            return query(self._read_model())
        except ProjectionTimeout:
            raise
        except Exception:
            self._forget()
            raise

    async def read(self, query: Callable[[ReadModel], T]) -> T:
        """``query(read_model)`` in a worker thread."""
        return await asyncio.to_thread(self._call, query)

    async def catch_up(self) -> bool:
        """Wait until the projection shows every write made so far; False if it did not
        within ``API_CONSISTENCY_TIMEOUT`` (the answer then says so; nothing is lost)."""
        if self.consistency_timeout == 0:
            return False
        try:
            await self.read(lambda rm: rm.catch_up(self.consistency_timeout))
        except ProjectionTimeout:
            return False
        return True

    async def ready(self) -> bool:
        """Temporal connected and the read models readable."""
        if not self.connected:
            return False
        try:
            await self.read(lambda rm: rm.position())
        except Exception:
            log.warning("read models not readable", exc_info=True)
            return False
        return True

    def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        with self._lock:
            opened, self._opened = self._opened, []
        for read_model in opened:
            try:
                read_model.close()
            except Exception:
                log.debug("closing a read-model connection failed", exc_info=True)
