"""The delivery daemon's loop: fan out, pick due stream heads, send them, record outcomes.

One replica is active at a time (a PostgreSQL session advisory lock, like the
projector's: :class:`DeliveryLock`); the others stand by and take over within a poll
interval or so of its session ending. Each beat of the loop, the active one:

1. fans out the public events that arrived (:mod:`a4c_webhooks.fanout`);
2. takes stream heads that are due (:func:`a4c_webhooks.store.due`), at most
   ``WEBHOOK_CONCURRENCY`` in flight, never two of one stream, at most
   ``WEBHOOK_MAX_IN_FLIGHT_PER_OWNER`` of one owner (:func:`owner_of`), and sends each
   on a task of its own;
3. records each outcome as it comes (delivered; or retry at the schedule's next delay,
   a 429/503's ``Retry-After`` honoured; or, the schedule used up, the stream parked)
   and beats again at once, so a stream's next event follows its delivery directly.

A 410, or a stream failing for longer than ``WEBHOOK_DISABLE_AFTER``, disables the
endpoint through an :class:`EndpointDisabler` (in production the worker's endpoint
workflow, which also mails the owner's admins); until the projector shows it disabled,
its heads are held back here.

Nothing is marked before it is sent: a daemon killed mid-request leaves the row pending,
and the next one sends it again with the same ``webhook-id``. SIGTERM stops taking new
heads and gives those in flight ``WEBHOOK_SHUTDOWN_GRACE`` to finish.

One tenant never takes every slot: an organization whose endpoints all hang (each
request until the timeout) holds at most its cap of them, and the heads of other owners
due later go out meanwhile. The store's page of heads is oldest first, so the heads of
owners at their cap may fill it; the page grows (to :data:`MAX_PAGE` heads) until enough
of the others are found or none is left.

Database calls are synchronous (the projector's :class:`Database`), made one at a time
on a thread of their own; the HTTP requests are asyncio, many at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from a4c_outbound.transport import Outbound, OutboundPolicy
from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.engine.lock import ProjectionLock
from a4c_webhooks import fanout, store
from a4c_webhooks.delivery import Outcome, attempt
from a4c_webhooks.metrics import WebhookMetrics
from a4c_webhooks.schedule import next_delay
from a4c_webhooks.sealing import SecretKeys
from a4c_webhooks.store import Due

log = logging.getLogger("a4c_webhooks")
T = TypeVar("T")

LOCK_NAMESPACE = "a4c_webhooks:"
STANDBY_INTERVAL = 1.0  # seconds between a standby's tries for the lock
SWEEP_INTERVAL = 60.0  # seconds between looks for streams failing too long
# A disable asked for is not asked for again (same endpoint) for this long; meanwhile
# the endpoint's heads are held back, as if it were disabled already.
DISABLE_HOLD = 600.0
# The most due heads read in one beat while looking past owners at their cap (the page
# starts at the free slots and grows fourfold): a bound on one beat's query.
MAX_PAGE = 512


class EndpointDisabler(Protocol):
    """Disables an endpoint on the daemon's behalf (``automatic``), telling ``notify``."""

    async def disable(self, endpoint_id: UUID, reason: str, notify: list[str]) -> None: ...


class DeliveryLock(ProjectionLock):
    """The projector's advisory lock, under the webhooks' own key (one per store)."""

    def __init__(self, location: Location) -> None:
        super().__init__(location, "webhooks")
        self.key = f"{LOCK_NAMESPACE}{location.schema}.{location.events_table}"


@dataclass(frozen=True)
class DaemonOptions:
    schedule: tuple[float, ...]
    disable_after: float
    concurrency: int = 16
    poll_interval: float = 0.5
    shutdown_grace: float = 20.0
    max_in_flight_per_owner: int = 4  # per owner_of(head), at least 1


@dataclass
class DaemonState:
    heartbeat: float = field(default_factory=time.monotonic)
    active: bool = False
    fanout_position: int = 0


class Daemon:
    """One replica's delivery loop; :meth:`run` until :meth:`stop`."""

    def __init__(
        self,
        location: Location,
        keys: SecretKeys,
        policy: OutboundPolicy,
        options: DaemonOptions,
        disabler: EndpointDisabler,
        *,
        admin_emails: Callable[[UUID], list[str]] | None = None,
        metrics: WebhookMetrics | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        self.location = location
        self.keys = keys
        self.policy = policy
        self.options = options
        self.disabler = disabler
        self.admin_emails = admin_emails
        self.metrics = metrics or WebhookMetrics()
        self.state = DaemonState()
        self._outbound = outbound
        self._rng = random.Random()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhooks-db")
        self._db: Database | None = None
        self._lock = DeliveryLock(location)
        self._in_flight: dict[tuple[UUID, UUID], asyncio.Task[None]] = {}
        self._owners_in_flight: Counter[UUID] = Counter()  # owner_of(head) → in flight
        # Endpoint → when its disable was asked for, and under which enabling of it (its
        # enabled_since): held back until the disable shows, or it is enabled again.
        self._held: dict[UUID, tuple[float, int]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_sweep = 0.0
        self._read_models_seen = False
        self._told_missing = False

    # --- control ----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking heads; :meth:`run` returns once those in flight are done."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> int:
        outbound = self._outbound or Outbound(self.policy)
        try:
            while not self._stopping.is_set():
                self._beat()
                if not self.state.active and not await self._acquire():
                    await self._sleep(STANDBY_INTERVAL)
                    continue
                try:
                    await self._step(outbound)
                except Exception as error:
                    self.metrics.errors.labels(kind="loop").inc()
                    log.warning("delivery loop: %s", _describe(error))
                    await self._lose_lock_if_gone()
                    await self._sleep(self.options.poll_interval)
                    continue
                await self._sleep(self.options.poll_interval)
            await self._drain()
        finally:
            if self._outbound is None:
                await outbound.aclose()
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_db)
            self._lock.release()
            self._executor.shutdown(wait=True)
            self.state.active = False
            self.metrics.active.set(0)
        return 0

    # --- the loop ---------------------------------------------------------------------

    def _beat(self) -> None:
        self.state.heartbeat = time.monotonic()
        self.metrics.heartbeat.set(time.time())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _acquire(self) -> bool:
        try:
            got = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._lock.try_acquire
            )
        except Exception as error:
            log.warning("cannot take the delivery lock: %s", _describe(error))
            self._lock.release()
            return False
        if got:
            log.info("active: this replica delivers")
            self.state.active = True
            self.metrics.active.set(1)
        return got

    async def _lose_lock_if_gone(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._lock.check)
        except Exception:
            log.warning("the delivery lock's session is gone: standing by")
            self._lock.release()
            self.state.active = False
            self.metrics.active.set(0)

    async def _step(self, outbound: Outbound) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._lock.check)
        if not self._read_models_seen:
            missing = await self._call(store.missing_read_models)
            if missing:
                if not self._told_missing:
                    log.warning(
                        "waiting for the projector to create %s (a4c-projector run)",
                        ", ".join(missing),
                    )
                    self._told_missing = True
                return
            self._read_models_seen = True
        fanned = await self._call(fanout.catch_up)
        self.state.fanout_position = fanned.position
        if fanned.deliveries:
            log.debug("fanned out %s events into %s deliveries", fanned.events, fanned.deliveries)
        restarted = await self._call(store.restart_reenabled)
        if restarted:
            log.info("%s streams of endpoints enabled again start afresh", restarted)
        await self._sweep()
        free = self.options.concurrency - len(self._in_flight)
        if free <= 0:
            return
        now = time.monotonic()
        self._held = {e: h for e, h in self._held.items() if now - h[0] < DISABLE_HOLD}
        for head in await self._choose(free):
            task = asyncio.create_task(self._deliver(outbound, head))
            self._in_flight[head.stream] = task
            self._owners_in_flight[owner_of(head)] += 1
            self.metrics.in_flight.set(len(self._in_flight))

    async def _choose(self, free: int) -> list[Due]:
        """Up to ``free`` due heads to send now, the longest waiting first: none held back
        for a disable, none beyond its owner's cap (owners already at it are left out by
        the query; the page's own heads are counted here). Heads passed over may still
        fill a page: then a bigger one is read, up to :data:`MAX_PAGE`, unless the store
        had no more."""
        cap = self.options.max_in_flight_per_owner
        want = free + len(self._held)
        while True:
            load = Counter(self._owners_in_flight)
            full = frozenset(owner for owner, n in load.items() if n >= cap)
            heads = await self._call(store.due, set(self._in_flight), want, full)
            chosen: list[Due] = []
            for head in heads:
                owner = owner_of(head)
                if load[owner] >= cap or self._holds(head.endpoint_id, head.enabled_since):
                    continue
                load[owner] += 1
                chosen.append(head)
                if len(chosen) == free:
                    return chosen
            if len(heads) < want or want >= MAX_PAGE:
                return chosen
            want = min(want * 4, MAX_PAGE)

    async def _deliver(self, outbound: Outbound, head: Due) -> None:
        try:
            outcome = await attempt(head, outbound, self.keys)
            self.metrics.deliveries.labels(outcome=outcome.kind).inc()
            await self._record(head, outcome)
        except Exception as error:
            # Not recorded: the row stays pending and is sent again (same webhook-id).
            self.metrics.errors.labels(kind="record").inc()
            log.warning("delivery %s: not recorded: %s", head.event_id, _describe(error))
        finally:
            self._in_flight.pop(head.stream, None)
            owner = owner_of(head)
            self._owners_in_flight[owner] -= 1
            if self._owners_in_flight[owner] <= 0:
                del self._owners_in_flight[owner]  # keyed by what is in flight only
            self.metrics.in_flight.set(len(self._in_flight))
            self._wake.set()

    async def _record(self, head: Due, outcome: Outcome) -> None:
        if outcome.delivered:
            assert outcome.status is not None
            await self._call(store.record_delivered, head, outcome.status)
            lag = (datetime.now(UTC) - head.occurred_at).total_seconds()
            self.metrics.delivery_lag.observe(max(lag, 0.0))
            return
        made = head.attempts + 1
        retry_in = next_delay(self.options.schedule, made, outcome.retry_after, self._rng)
        since = await self._call(
            store.record_failure, head, outcome.status, outcome.error, retry_in
        )
        log.info(
            "delivery %s to endpoint %s failed (attempt %s): %s; %s",
            head.event_id,
            head.endpoint_id,
            made,
            outcome.error,
            "stream parked" if retry_in is None else f"next try in {retry_in:.1f} s",
        )
        if outcome.kind == "gone":
            self._request_disable(
                head.endpoint_id,
                head.owner_id,
                head.enabled_since,
                "the endpoint answered 410 Gone",
            )
        elif (datetime.now(UTC) - since).total_seconds() > self.options.disable_after:
            self._request_disable(
                head.endpoint_id, head.owner_id, head.enabled_since, self._failing_reason()
            )

    def _failing_reason(self) -> str:
        return f"deliveries failed for more than {_span(self.options.disable_after)}"

    async def _sweep(self) -> None:
        """Endpoints whose streams fail (or sit parked) for too long are disabled."""
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_INTERVAL:
            return
        self._last_sweep = now
        for endpoint_id, owner_id, enabled_since in await self._call(
            store.long_failing, self.options.disable_after
        ):
            self._request_disable(endpoint_id, owner_id, enabled_since, self._failing_reason())

    def _holds(self, endpoint_id: UUID, enabled_since: int) -> bool:
        """Whether deliveries to the endpoint wait for its disable to show: not once it was
        enabled again after the disable was asked for."""
        held = self._held.get(endpoint_id)
        return held is not None and held[1] >= enabled_since

    def _request_disable(
        self, endpoint_id: UUID, owner_id: UUID | None, enabled_since: int, reason: str
    ) -> None:
        if self._holds(endpoint_id, enabled_since):
            return
        self._held[endpoint_id] = (time.monotonic(), enabled_since)
        self.metrics.disables.inc()
        task = asyncio.create_task(self._disable(endpoint_id, owner_id, reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _disable(self, endpoint_id: UUID, owner_id: UUID | None, reason: str) -> None:
        log.warning("disabling endpoint %s: %s", endpoint_id, reason)
        try:
            notify: list[str] = []
            if owner_id is not None and self.admin_emails is not None:
                notify = await asyncio.to_thread(self.admin_emails, owner_id)
            await self.disabler.disable(endpoint_id, reason, notify)
        except Exception as error:
            self.metrics.errors.labels(kind="disable").inc()
            self._held.pop(endpoint_id, None)  # asked again at its next failure
            log.warning("cannot disable endpoint %s: %s", endpoint_id, _describe(error))

    async def _drain(self) -> None:
        """SIGTERM: let what is in flight finish, within the grace; then abandon it
        (the rows stay pending: sent again, same webhook-id, by the next daemon)."""
        tasks = [*self._in_flight.values(), *self._background]
        if not tasks:
            return
        log.info("stopping: %s deliveries in flight", len(self._in_flight))
        _, late = await asyncio.wait(tasks, timeout=self.options.shutdown_grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    # --- the database, one call at a time on its own thread ---------------------------

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._with_db, function, args
        )

    def _with_db(self, function: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._db is None:
            db = connect(self.location, purpose="webhooks")
            try:
                store.ensure_tables(db)  # idempotent: a fresh schema needs them
            except Exception:
                db.close()
                raise
            self._db = db
        try:
            return function(self._db, *args)
        except Exception:
            self._close_db()  # broken, maybe: the next call opens a new one
            raise

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None


def owner_of(head: Due) -> UUID:
    """Whose share of the slots a head takes: its endpoint's organization; each of the
    platform's endpoints (the operators') is a share of its own."""
    return head.owner_id if head.owner_id is not None else head.endpoint_id


def _describe(error: BaseException) -> str:
    """An error as logged: its type and first line (driver errors name no secret)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300]}" if text else type(error).__name__


def _span(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} seconds"


__all__ = [
    "Daemon",
    "DaemonOptions",
    "DaemonState",
    "DeliveryLock",
    "EndpointDisabler",
    "owner_of",
]
