"""Bootstraps as the Temporal server saw them: how long each took; and, from the
histories, how long the work a killed or stopped worker held stayed stranded."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from a4c_worker.client import connect
from a4c_worker.codec import PayloadKeys
from a4c_worker.temporal_connection import TemporalConnection
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.invitation import InvitationWorkflow
from soaklib.facts import TemporalFacts
from soaklib.faults import FaultRecord

# The faults that strand a worker's work (its activities, its cached workflows).
WORKER_FAULTS = ("worker_kill", "process_stop", "temporal_restart")
ACTIVITY_ENDS = (
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
)
HISTORY_FETCHES = 16  # histories read at once
# A workflow task times out on the sticky queue some seconds after the fault struck.
STICKY_WINDOW_S = 30.0


async def soak_client(facts: TemporalFacts) -> Client:
    return await connect(
        TemporalConnection(
            target_host=facts.address,
            namespace=facts.namespace,
            payload_keys=PayloadKeys.parse(facts.payload_keys),
        )
    )


@dataclass(frozen=True)
class Run:
    workflow_id: str
    start: float  # epoch seconds
    close: float | None  # None: still running

    @property
    def seconds(self) -> float | None:
        return None if self.close is None else self.close - self.start

    def spans(self, at: float) -> bool:
        return self.start <= at and (self.close is None or self.close >= at)


@dataclass
class Stranded:
    """After one fault: the longest a retried activity, and a timed-out workflow task,
    took to be done (from the fault) — the time a dead worker's work stayed stranded."""

    activity_s: float = 0.0
    workflow_task_s: float = 0.0


@dataclass(frozen=True)
class BootstrapTimings:
    runs: list[Run]
    stranded: dict[int, Stranded]  # index in the fault records -> what it stranded

    def summary(self, faults: list[FaultRecord]) -> dict[str, Any]:
        """Bootstrap completion p50/p99/max; per worker fault kind, the longest stranded
        activity and workflow task after it."""
        done = sorted(s for r in self.runs if (s := r.seconds) is not None)
        found: dict[str, Any] = {
            "count": len(self.runs),
            "open": sum(r.close is None for r in self.runs),
            "p50_s": round(statistics.median(done), 3) if done else None,
            "p99_s": round(done[min(len(done) - 1, int(len(done) * 0.99))], 3) if done else None,
            "max_s": round(done[-1], 3) if done else None,
        }
        for kind in WORKER_FAULTS:
            mine = [
                self.stranded.get(i, Stranded()) for i, f in enumerate(faults) if f.kind == kind
            ]
            if mine:
                found[f"stranded_after_{kind}"] = {
                    "activity_max_s": round(max(m.activity_s for m in mine), 3),
                    "workflow_task_max_s": round(max(m.workflow_task_s for m in mine), 3),
                }
        return found


async def bootstrap_timings(facts: TemporalFacts, faults: list[FaultRecord]) -> BootstrapTimings:
    client = await soak_client(facts)
    bootstraps = await _runs(client, f"WorkflowType = '{OrganizationBootstrapWorkflow.__name__}'")
    invitations = await _runs(client, f"WorkflowType = '{InvitationWorkflow.__name__}'")
    struck = {i: f for i, f in enumerate(faults) if f.kind in WORKER_FAULTS}
    stranded: dict[int, Stranded] = {i: Stranded() for i in struck}
    hit = [r for r in bootstraps + invitations if any(r.spans(f.wall) for f in struck.values())]
    gate = asyncio.Semaphore(HISTORY_FETCHES)

    async def read(run: Run) -> None:
        async with gate:
            history = await client.get_workflow_handle(run.workflow_id).fetch_history()
        _strand(history.events, struck, stranded)

    await asyncio.gather(*(read(run) for run in hit))
    return BootstrapTimings(bootstraps, stranded)


async def _runs(client: Client, query: str) -> list[Run]:
    runs = []
    async for execution in client.list_workflows(query):
        close = execution.close_time.timestamp() if execution.close_time else None
        runs.append(Run(execution.id, execution.start_time.timestamp(), close))
    return runs


def _strand(
    events: Sequence[HistoryEvent], struck: dict[int, FaultRecord], stranded: dict[int, Stranded]
) -> None:
    """Attribute each retried activity and each timed-out workflow task to the latest
    worker fault before it, and keep how long after that fault it was done."""
    scheduled: dict[int, float] = {}
    attempts: dict[int, int] = {}  # started event id -> attempt
    timed_out_task: float | None = None
    for event in events:
        at = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attempts[event.event_id] = event.activity_task_started_event_attributes.attempt
        elif kind in ACTIVITY_ENDS:
            attributes = _ends(event)
            if attempts.get(attributes.started_event_id, 1) > 1:
                since = scheduled.get(attributes.scheduled_event_id, at)
                _keep(struck, stranded, since, at, "activity_s")
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            timed_out_task = at if timed_out_task is None else timed_out_task
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and timed_out_task is not None:
            _keep(struck, stranded, timed_out_task - STICKY_WINDOW_S, at, "workflow_task_s")
            timed_out_task = None


def _ends(event: HistoryEvent) -> Any:
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        return event.activity_task_completed_event_attributes
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        return event.activity_task_failed_event_attributes
    return event.activity_task_timed_out_event_attributes


def _keep(
    struck: dict[int, FaultRecord],
    stranded: dict[int, Stranded],
    since: float,
    done: float,
    field: str,
) -> None:
    before = [(f.wall, i) for i, f in struck.items() if since <= f.wall <= done]
    if before:
        wall, index = max(before)
        setattr(stranded[index], field, max(getattr(stranded[index], field), done - wall))
