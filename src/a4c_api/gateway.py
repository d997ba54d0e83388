"""What the routes use to reach the rest of a4c: Temporal for writes, the read models for reads.

The only seam between the HTTP layer and the system: a route never opens a connection
itself. Writes are workflow starts and updates through ``a4c_worker.client``; reads are
``a4c_projector.queries.ReadModel`` calls, run on a pool of ``READ_THREADS`` threads of
the gateway's own, each with a connection of its own (connections are not shared
between threads, all are closed at shutdown), so nothing else in the process can take
the threads reads need. A read whose connection broke (the server restarted, an
operator ended the backend) is tried once more on a new connection; when the database
still does not answer, the request is a 503 with ``Retry-After``, never a 500. A read
that does not come back within ``READ_TIMEOUT`` (a server stopped, a stuck network in
between: TCP notices neither) is a 503 too, and its connection is broken off so the
thread is free again.

Faults answer fast: the Temporal client gives up retrying a call after
``TEMPORAL_RETRY``'s budget (the SDK's default waits 10 s), and the answer is a 503 the
caller may retry (writes are idempotent: deterministic ids).

Read-your-writes: after a write, :meth:`Gateway.catch_up` waits (at most
``API_CONSISTENCY_TIMEOUT``) until the projection has applied everything the event
store held when the write returned, so the answer, and the caller's next GET, show it.
A wait holds no thread: while anyone waits, one task reads the projection's position
every ``POLL_SECONDS`` and wakes the waits it reached, so a thousand waits cost one
short read per poll. One caller waits at most ``API_MAX_WAITS_PER_PRINCIPAL`` times at
once; past that its writes answer at once, saying whether the read models show them
(``A4C-Consistent``) rather than 429: the write happened, and a refusal would invite
the caller to make it again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from temporalio.client import Client
from temporalio.service import RetryConfig

from a4c_api.problems import ProblemError, unavailable
from a4c_api.settings import DEFAULT_MAX_WAITS_PER_PRINCIPAL
from a4c_projector.queries import UNAVAILABLE_ERRORS, Location, ReadModel
from a4c_worker.client import connect
from a4c_worker.connection import TemporalConnection, connect_failure

T = TypeVar("T")
log = logging.getLogger(__name__)

# How long to wait between attempts to reach Temporal while it is not up yet (seconds).
CONNECT_RETRY_MAX = 5.0
# Threads (and so read-model connections) of one API process.
READ_THREADS = 8
# How often the projection's position is read while a request waits for it (seconds).
POLL_SECONDS = 0.02
# How long one read may take before it is given up on (seconds): the API's reads are
# single indexed statements answered in milliseconds.
READ_TIMEOUT = 3.0
# How long the Temporal client retries a call Temporal does not answer before the request
# is a 503: about 1.5 s (its retries run to the first of the two limits).
TEMPORAL_RETRY = RetryConfig(
    initial_interval_millis=100,
    multiplier=2.0,
    max_interval_millis=500,
    max_elapsed_time_millis=1500,
    max_retries=6,
)


class ReadModelsUnreachable(ProblemError):
    """The database did not answer a read, even on a new connection: 503, try again."""

    def __init__(self) -> None:
        found = unavailable("the read models are not reachable; try again")
        super().__init__(found.problem, found.headers)


class _Reading:
    """The read-model connection one read is using, to break it off if it hangs. The
    lock keeps the break-off from meeting a close of the same connection."""

    def __init__(self) -> None:
        self._using: ReadModel | None = None
        self._abandoned = False
        self._lock = threading.Lock()

    def attempt(self, read_model: ReadModel, query: Callable[[ReadModel], T]) -> T:
        with self._lock:
            if self._abandoned:
                raise ReadModelsUnreachable()  # given up on while it was connecting
            self._using = read_model
        try:
            return query(read_model)
        finally:
            with self._lock:
                self._using = None

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            if self._using is not None:
                self._using.interrupt()


class ProjectionWatch:
    """Where the projection is, for every waiting request at once: while anyone waits,
    one task reads the position every ``POLL_SECONDS`` and wakes the waits."""

    def __init__(self, position: Callable[[], Awaitable[int]]) -> None:
        self._read_position = position
        self.position = -1  # the last one read (it only grows)
        self._moved = asyncio.Event()
        self._waiting = 0
        self._task: asyncio.Task[None] | None = None

    async def reach(self, target: int) -> None:
        """Return once the projection has reached ``target`` (the caller bounds the wait)."""
        self._waiting += 1
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._poll(), name="a4c-api-projection-watch"
            )
        try:
            while self.position < target:
                await self._moved.wait()
        finally:
            self._waiting -= 1

    async def _poll(self) -> None:
        failing = False
        try:
            while self._waiting:
                try:
                    self.position = await self._read_position()
                    failing = False
                except Exception:
                    if not failing:  # once per outage, not once per poll
                        log.warning("reading the projection's position failed", exc_info=True)
                    failing = True
                moved, self._moved = self._moved, asyncio.Event()
                moved.set()
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self._task = None

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Gateway:
    def __init__(
        self,
        location: Location,
        *,
        temporal: TemporalConnection,
        task_queue: str,
        consistency_timeout: float,
        max_waits_per_principal: int = DEFAULT_MAX_WAITS_PER_PRINCIPAL,
    ) -> None:
        self.location = location
        self.temporal = temporal
        self.task_queue = task_queue
        self.consistency_timeout = consistency_timeout
        self.max_waits_per_principal = max_waits_per_principal
        self._client: Client | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="a4c-api-read")
        self._local = threading.local()
        self._opened: list[ReadModel] = []
        self._lock = threading.Lock()
        self._watch = ProjectionWatch(lambda: self.read(lambda rm: rm.position()))
        self._waits: Counter[str] = Counter()  # waits in progress, by principal

    # --- Temporal ----------------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting to Temporal in the background (the service starts, and says
        it is not ready, while Temporal is down)."""
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        pause = 0.2
        while self._client is None:
            try:
                self._client = await connect(self.temporal, retry_config=TEMPORAL_RETRY)
            except RuntimeError as exc:  # the SDK's "Failed client connect"
                log.warning("%s (retrying)", connect_failure(self.temporal, exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, CONNECT_RETRY_MAX)

    @property
    def client(self) -> Client:
        """The Temporal client; a 503 problem while it is not connected."""
        if self._client is None:
            raise unavailable("the workflow service is not reachable yet")
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

    def _call(self, query: Callable[[ReadModel], T], reading: _Reading) -> T:
        if getattr(self._local, "read_model", None) is not None:
            try:
                return reading.attempt(self._read_model(), query)
            except UNAVAILABLE_ERRORS as exc:
                # It broke since its last read: once more, on a new connection.
                log.info("a read-model connection broke (%s); reading again", type(exc).__name__)
                self._forget()
            except Exception:
                self._forget()
                raise
        try:
            return reading.attempt(self._read_model(), query)
        except UNAVAILABLE_ERRORS as exc:
            self._forget()
            log.warning("the read models are not reachable: %s", exc)
            raise ReadModelsUnreachable() from exc
        except Exception:
            self._forget()
            raise

    async def read(self, query: Callable[[ReadModel], T]) -> T:
        """``query(read_model)`` on a read thread; :class:`ReadModelsUnreachable` when
        the database does not answer, within ``READ_TIMEOUT``."""
        context = contextvars.copy_context()  # the request's (log fields), as to_thread does
        reading = _Reading()
        done = asyncio.get_running_loop().run_in_executor(
            self._reads, context.run, self._call, query, reading
        )
        try:
            return await asyncio.wait_for(done, READ_TIMEOUT)
        except TimeoutError:
            log.warning("a read of the read models took over %s s; given up", READ_TIMEOUT)
            reading.abandon()  # its thread gets an error and drops the connection
            raise ReadModelsUnreachable() from None

    async def shows_everything(self) -> bool:
        """Whether the projection already shows every write made so far (one look)."""
        # The head first: a position read after it that reaches it has applied it.
        return await self.read(lambda rm: rm.head() <= rm.position())

    async def catch_up(self, principal: str | None = None) -> bool:
        """Wait until the projection shows every write made so far; False if it did not
        within ``API_CONSISTENCY_TIMEOUT`` (the answer then says so; nothing is lost).
        ``principal`` (who wrote) already waiting ``API_MAX_WAITS_PER_PRINCIPAL`` times:
        no wait, one look."""
        if self.consistency_timeout == 0:
            return False
        if principal is not None and self._waits[principal] >= self.max_waits_per_principal:
            try:
                return await self.shows_everything()
            except ReadModelsUnreachable:
                return False
        if principal is not None:
            self._waits[principal] += 1  # before any await: the bound holds exactly
        try:
            async with asyncio.timeout(self.consistency_timeout):
                target = await self.read(lambda rm: rm.head())
                await self._watch.reach(target)
        except TimeoutError:
            return False
        except ReadModelsUnreachable:
            return False  # the write happened: say it may not show yet, not "try again"
        finally:
            if principal is not None:
                self._waits[principal] -= 1
                if not self._waits[principal]:
                    del self._waits[principal]  # kept only while someone waits
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
        self._watch.close()
        self._reads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            opened, self._opened = self._opened, []
        for read_model in opened:
            try:
                read_model.close()
            except Exception:
                log.debug("closing a read-model connection failed", exc_info=True)
