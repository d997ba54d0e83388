"""The daemon loop: hold the projection, catch up in large batches, then follow live.

* **Ownership**: on PostgreSQL a standby retries the advisory lock every
  ``lock_retry`` seconds; the holder checks its lock session once per poll interval.
* **Catch-up**: full batches are chained without waiting.
* **Live**: PostgreSQL ``LISTEN`` on the events channel (eventsourcing NOTIFYs on every
  insert) with ``poll_interval`` as the fallback timeout; SQLite polls. When the guard
  held rows back (an open transaction below them) the loop re-reads after
  ``blocked_retry`` seconds, because the transaction that unblocks them may be one
  that sends no notification.
* **Faults**: a lost connection closes everything and reconnects with exponential
  backoff (capped); a poison event stops the loop with the error (exit code 1). A lost
  LISTEN connection alone is not worth a restart: the loop falls back to polling,
  reports itself not listening (``/ready`` turns red) and opens a new one every poll
  interval until it succeeds.
* **Stop**: ``stop()`` (SIGTERM) is honoured between batches: the current batch commits,
  then ``run`` returns 0.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field

import psycopg

from a4c_domain.errors import ConfigurationError
from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.lock import ProjectionLock
from a4c_projector.engine.projector import FaultHook, PoisonEvent, Projector
from a4c_projector.eventlog.guard import DEFAULT_GAP_GRACE
from a4c_projector.eventlog.store import EventStore
from a4c_projector.metrics import ProjectorMetrics
from a4c_projector.readmodel.tracking import DEFAULT_PROJECTION, TrackingConflict
from a4c_projector.settings import DEFAULT_BATCH_SIZE

log = logging.getLogger(__name__)

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
    TrackingConflict,
)


@dataclass
class RunnerOptions:
    projection: str = DEFAULT_PROJECTION
    batch_size: int = DEFAULT_BATCH_SIZE
    poll_interval: float = 0.5
    blocked_retry: float = 0.005
    lock_retry: float = 1.0
    dead_letter: bool = False
    gap_grace: float = DEFAULT_GAP_GRACE
    max_backoff: float = 5.0


@dataclass
class RunnerState:
    """What the HTTP thread reads (plain attributes; written by the loop thread only)."""

    heartbeat: float = field(default_factory=time.monotonic)
    active: bool = False
    listening: bool = False
    last_error: str | None = None
    position: int = 0


class Runner:
    def __init__(
        self,
        store: EventStore,
        options: RunnerOptions | None = None,
        *,
        metrics: ProjectorMetrics | None = None,
        fault: FaultHook | None = None,
    ) -> None:
        self.store = store
        self.options = options or RunnerOptions()
        self.metrics = metrics or ProjectorMetrics()
        self.fault = fault
        self.state = RunnerState()
        self._stop = threading.Event()
        self._listen: Database | None = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        """Run until stopped (0), a poison event stops the projection (1), or the event
        store turns out to be one the projection cannot follow safely (2)."""
        backoff = 0.1
        while not self.stopping:
            lock = ProjectionLock(self.store.location, self.options.projection)
            projector = self._projector()
            try:
                if not self._acquire(lock):
                    break
                self._follow(projector, lock)
                backoff = 0.1
            except PoisonEvent as poison:
                self.metrics.errors.labels(kind="poison").inc()
                self.state.last_error = str(poison)
                log.error("projection stopped at a poison event: %s", poison)
                return 1
            except ConfigurationError as exc:  # e.g. a sequence CACHE raised meanwhile
                self.metrics.errors.labels(kind="configuration").inc()
                self.state.last_error = str(exc)
                log.error("projection stopped: %s", exc)
                return 2
            except CONNECTION_ERRORS as exc:
                self.metrics.errors.labels(kind="connection").inc()
                self.state.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("projector lost its database (%s); retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.options.max_backoff)
            finally:
                self.state.active = self.state.listening = False
                self.metrics.active.set(0)
                self._close_listen()
                projector.close()
                lock.release()
        return 0

    def _beat(self) -> float:
        """The loop is alive: for ``/health`` (monotonic) and for Prometheus (Unix time)."""
        self.state.heartbeat = now = time.monotonic()
        self.metrics.heartbeat.set_to_current_time()
        return now

    def _projector(self) -> Projector:
        return Projector(
            self.store.location,
            self.store.mapper,
            projection=self.options.projection,
            batch_size=self.options.batch_size,
            dead_letter=self.options.dead_letter,
            gap_grace=self.options.gap_grace,
            fault=self.fault,
        )

    def _acquire(self, lock: ProjectionLock) -> bool:
        while not self.stopping:
            self._beat()
            if lock.try_acquire():
                log.info("holding projection %r", self.options.projection)
                self.state.active = True
                self.metrics.active.set(1)
                return True
            self._stop.wait(self.options.lock_retry)
        return False

    def _follow(self, projector: Projector, lock: ProjectionLock) -> None:
        self._open_listen()
        last_lock_check = last_listen_attempt = time.monotonic()
        while not self.stopping:
            now = self._beat()
            lost_listen = self.store.channel is not None and self._listen is None
            if lost_listen and now - last_listen_attempt >= self.options.poll_interval:
                last_listen_attempt = now
                self._reopen_listen()
            result = projector.run_batch()
            self.state.position = result.position
            self.metrics.position.set(result.position)
            if result.size:
                self.metrics.batch_events.observe(result.size)
                self.metrics.batch_duration.observe(result.duration)
            if time.monotonic() - last_lock_check >= self.options.poll_interval:
                lock.check()
                last_lock_check = time.monotonic()
            if result.size >= self.options.batch_size:
                continue  # catching up: chain full batches
            self._wait(self.options.blocked_retry if result.blocked else self.options.poll_interval)

    # --- LISTEN / poll ----------------------------------------------------------------

    def _open_listen(self) -> None:
        if self.store.channel is None:
            return
        self._listen = connect(self.store.location, autocommit=True, purpose="listen")
        self._listen.execute(f'LISTEN "{self.store.channel}"')
        self.state.listening = True

    def _reopen_listen(self) -> None:
        try:
            self._open_listen()
            log.info("listening for new events again")
        except CONNECTION_ERRORS as exc:
            self._close_listen()
            self.metrics.errors.labels(kind="listen").inc()
            log.warning("cannot LISTEN (%s); polling every %.2fs", exc, self.options.poll_interval)

    def _close_listen(self) -> None:
        self.state.listening = False
        if self._listen is not None:
            try:
                self._listen.close()
            except Exception:
                log.debug("closing the LISTEN connection failed", exc_info=True)
            self._listen = None

    def _wait(self, timeout: float) -> None:
        listen = self._listen
        if listen is None:
            self._stop.wait(timeout)
            return
        conn = listen.conn  # type: ignore[attr-defined]
        try:
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except CONNECTION_ERRORS as exc:
            self.state.listening = False
            self.metrics.errors.labels(kind="listen").inc()
            self.state.last_error = f"LISTEN: {type(exc).__name__}: {exc}"
            log.warning("lost the LISTEN connection (%s); polling meanwhile", exc)
            self._close_listen()
