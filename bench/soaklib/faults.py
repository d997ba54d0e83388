"""The soak's faults: seeded, logged, each measured until the stack has recovered.

A schedule is drawn from the seed before the run starts (which kinds, in which order,
at which second), so a failing run replays with the same faults. Each injection is
an awaitable that returns once the fault has been applied and undone (a killed process
restarted, a stopped one continued, BIND back); recovery is then measured by the lag
probe: the projection has applied an event committed after the fault and its lag is
under a second again.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg

from a4c_tool.processes import Child
from soaklib.hooks import Hooks
from soaklib.lag import LagProbe
from soaklib.stack import SoakStack, sigkill

# Every kind, each at least once in a run long enough (issue 18's list).
KINDS = (
    "projector_kill",  # SIGKILL of the active projector
    "worker_kill",  # SIGKILL of a worker in the middle of activities
    "api_kill",  # SIGKILL of an API process mid-request
    "backend_terminate",  # pg_terminate_backend on every a4c connection
    "process_stop",  # SIGSTOP a worker or the active projector past the gap grace
    "smtp_refuse",  # the SMTP server answers 451 for a while
    "bind_restart",  # BIND stopped, then started again
    "temporal_restart",  # the Temporal dev server killed and started again
    "pg_failover",  # pg_autoctl perform failover
    "pg_primary_kill",  # SIGKILL of the primary's postmaster (and keeper)
    "webhooks_kill",  # SIGKILL of the active webhook daemon mid-delivery
    "receiver_down",  # a webhook receiver refuses connections for a while
)
FAILOVER_KINDS = frozenset({"pg_failover", "pg_primary_kill"})
RECEIVER_KINDS = frozenset({"receiver_down"})
STOP_SECONDS = 3.0  # SIGSTOP: well past the projector's gap grace (0.25 s)
OUTAGE_SECONDS = 5.0  # SMTP refusing, BIND down, a webhook receiver down
RECOVERY_TIMEOUT = 90.0
# One fault this often in a long run; a short one still gets every kind once.
FAULT_SPACING_SECONDS = 12.0


class Cluster(Protocol):
    """The failover side of tests/servers/pgfailover.FailoverCluster."""

    def perform_failover(self) -> float: ...

    def kill_primary(self) -> float: ...


@dataclass
class FaultRecord:
    kind: str
    at: float  # seconds since the run started
    target: str
    wall: float = field(default_factory=time.time)  # when, to match workflows' times
    recovery_s: float | None = None  # None: not recovered within RECOVERY_TIMEOUT
    write_unavailable_s: float | None = None  # failovers: until writes worked again


@dataclass
class Faults:
    stack: SoakStack
    probe: LagProbe
    rng: random.Random
    log_path: Path
    cluster: Cluster | None = None
    hooks: Hooks | None = None
    records: list[FaultRecord] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def kinds(self) -> tuple[str, ...]:
        left_out = (FAILOVER_KINDS if self.cluster is None else frozenset()) | (
            RECEIVER_KINDS if self.hooks is None else frozenset()
        )
        return tuple(k for k in KINDS if k not in left_out)

    def schedule(self, duration: float, warmup: float) -> list[tuple[float, str]]:
        """When each fault starts (seconds since the run's start) and which: every kind once
        in a shuffled order, then again while time remains, spread evenly after the warm-up."""
        kinds = list(self.kinds())
        window = duration - warmup
        count = max(len(kinds), int(window // FAULT_SPACING_SECONDS))
        order: list[str] = []
        while len(order) < count:
            batch = kinds[:]
            self.rng.shuffle(batch)
            order += batch
        step = window / count
        return [(warmup + i * step, kind) for i, kind in enumerate(order[:count])]

    async def run(self, duration: float, warmup: float) -> None:
        for at, kind in self.schedule(duration, warmup):
            delay = self.started + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.inject(kind)

    async def inject(self, kind: str) -> FaultRecord:
        since = time.monotonic()
        head = self.probe.head_now()
        record = FaultRecord(kind, round(since - self.started, 3), "")
        self.records.append(record)
        action: Callable[[FaultRecord], Awaitable[None]] = getattr(self, f"_{kind}")
        await action(record)
        self._log(record, "applied")
        recovery = await self.probe.wait_recovered(since, head, RECOVERY_TIMEOUT)
        record.recovery_s = None if recovery is None else round(recovery, 3)
        self._log(record, "recovered")
        return record

    def _log(self, record: FaultRecord, phase: str) -> None:
        line = {"phase": phase, "t": round(time.monotonic() - self.started, 3), **vars(record)}
        with self.log_path.open("a") as out:
            out.write(json.dumps(line) + "\n")

    # --- the faults -----------------------------------------------------------------

    async def _kill_and_restart(self, child: Child, record: FaultRecord) -> None:
        record.target = child.name
        sigkill(child)
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))  # as a supervisor would, not at once
        child.start()  # from the main thread: PR_SET_PDEATHSIG ties it to the soak
        await asyncio.to_thread(self.stack.wait_ready, child)

    async def _projector_kill(self, record: FaultRecord) -> None:
        active = await asyncio.to_thread(self.stack.active_projector)
        await self._kill_and_restart(active or self.rng.choice(self.stack.projectors), record)

    async def _worker_kill(self, record: FaultRecord) -> None:
        await self._kill_and_restart(self.rng.choice(self.stack.workers), record)

    async def _api_kill(self, record: FaultRecord) -> None:
        await self._kill_and_restart(self.rng.choice(self.stack.apis), record)

    async def _webhooks_kill(self, record: FaultRecord) -> None:
        active = await asyncio.to_thread(self.stack.active_webhooks)
        await self._kill_and_restart(active or self.rng.choice(self.stack.webhooks), record)

    async def _receiver_down(self, record: FaultRecord) -> None:
        assert self.hooks is not None
        hook = self.hooks.receiver_down(self.rng)
        record.target = f"receiver of {hook.name}"
        try:
            await asyncio.sleep(OUTAGE_SECONDS)
        finally:
            hook.receiver.up()  # on the same port: the endpoint's URL stays right

    async def _backend_terminate(self, record: FaultRecord) -> None:
        record.target = "every a4c backend on the primary"
        await asyncio.to_thread(terminate_backends, self.stack.store.conninfo)

    async def _process_stop(self, record: FaultRecord) -> None:
        active = await asyncio.to_thread(self.stack.active_projector)
        candidates = [*self.stack.workers, *([active] if active else [])]
        child = self.rng.choice(candidates)
        record.target = child.name
        assert child.process is not None
        os.killpg(child.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(STOP_SECONDS)
        finally:
            os.killpg(child.process.pid, signal.SIGCONT)

    async def _smtp_refuse(self, record: FaultRecord) -> None:
        record.target = "smtp sink"
        self.stack.mail.handler.refuse_for(OUTAGE_SECONDS)
        await asyncio.sleep(OUTAGE_SECONDS)

    async def _bind_restart(self, record: FaultRecord) -> None:
        record.target = "named"
        await asyncio.to_thread(self.stack.bind.stop)
        await asyncio.sleep(OUTAGE_SECONDS)
        self.stack.bind.start()  # from the main thread, as every child
        await asyncio.to_thread(self.stack.bind.wait_ready)

    async def _temporal_restart(self, record: FaultRecord) -> None:
        child = self.stack.temporal_child
        record.target = child.name
        sigkill(child)
        await asyncio.sleep(1.0)
        child.start()
        await asyncio.to_thread(self.stack.wait_temporal)

    async def _pg_failover(self, record: FaultRecord) -> None:
        assert self.cluster is not None
        record.target = "pg_autoctl perform failover"
        seconds = await asyncio.to_thread(self.cluster.perform_failover)
        record.write_unavailable_s = round(seconds, 3)

    async def _pg_primary_kill(self, record: FaultRecord) -> None:
        assert self.cluster is not None
        record.target = "primary postmaster"
        seconds = await asyncio.to_thread(self.cluster.kill_primary)
        record.write_unavailable_s = round(seconds, 3)


def terminate_backends(conninfo: str) -> int:
    """pg_terminate_backend on every other client connection to the database; how many."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        ).fetchall()
    return len(rows)


def summary(records: list[FaultRecord]) -> dict[str, dict[str, float | int | None]]:
    """Per kind: how many, recovery p50/max (seconds), how many never recovered."""
    found: dict[str, dict[str, float | int | None]] = {}
    for kind in sorted({r.kind for r in records}):
        mine = [r for r in records if r.kind == kind]
        times = sorted(r.recovery_s for r in mine if r.recovery_s is not None)
        found[kind] = {
            "count": len(mine),
            "recovery_p50_s": times[len(times) // 2] if times else None,
            "recovery_max_s": times[-1] if times else None,
            "unrecovered": sum(r.recovery_s is None for r in mine),
        }
    return found
