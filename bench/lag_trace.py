"""``a4c-projector run`` with timers on its live path, for ``projector_lag.py --trace``.

Runs the real daemon (``a4c_projector.cli.main``) after wrapping, in this process only,
the steps of one live iteration: the wait for a notification, the batch and its parts
(claim the position, fetch and decode, write, move the position, commit), the fence and
the look at the watched writers. Each batch becomes one record (monotonic times, which
every process on Linux shares with the writers' stamps); they are written as JSON to
``LAG_TRACE_FILE`` when the daemon exits. Nothing of it is in the product: the timers
would cost a little on every batch.

    LAG_TRACE_FILE=/tmp/trace.json python bench/lag_trace.py run
"""

from __future__ import annotations

import atexit
import cProfile
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from a4c_projector import cli
from a4c_projector.engine import projector as projector_module
from a4c_projector.engine import runner as runner_module
from a4c_projector.eventlog import source as source_module

F = TypeVar("F", bound=Callable[..., Any])

# The batch being run: stage -> seconds spent in it (summed over calls).
current: dict[str, float] = {}
batches: list[dict[str, Any]] = []
waits: list[tuple[float, float, bool]] = []  # (began, ended, a notification woke it)


def timed(stage: str, function: F) -> F:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            current[stage] = current.get(stage, 0.0) + time.monotonic() - began
            current[f"{stage}_calls"] = current.get(f"{stage}_calls", 0) + 1

    return wrapper  # type: ignore[return-value]


def timed_until_read(stage: str, function: F) -> F:
    """For a step that sends now and reads later (it returns the reader): from the call
    until the read returns, the round trip it shares with what was sent beside it."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        read = function(*args, **kwargs)

        def timed_read() -> Any:
            try:
                return read()
            finally:
                current[stage] = current.get(stage, 0.0) + time.monotonic() - began
                current[f"{stage}_calls"] = current.get(f"{stage}_calls", 0) + 1

        return timed_read

    return wrapper  # type: ignore[return-value]


def traced_batch(function: F) -> F:
    @functools.wraps(function)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        current.clear()
        began = time.monotonic()
        result = function(self, *args, **kwargs)
        ended = time.monotonic()
        batches.append(
            {
                "began": began,
                "ended": ended,
                "start": result.start,
                "position": result.position,
                "size": result.size,
                "blocked": result.blocked,
                **current,
            }
        )
        return result

    return wrapper  # type: ignore[return-value]


def traced_wait(function: F) -> F:
    @functools.wraps(function)
    def wrapper(self: Any, timeout: float) -> None:
        began = time.monotonic()
        function(self, timeout)
        ended = time.monotonic()
        waits.append((began, ended, ended - began < timeout * 0.95))

    return wrapper  # type: ignore[return-value]


def traced_hook(function: F) -> F:
    """The batch's own marks (before_write, before_commit, after_commit): when."""

    @functools.wraps(function)
    def wrapper(self: Any, stage: str, notification_id: int) -> None:
        if stage != "handle":
            current[f"at_{stage}"] = time.monotonic()
        function(self, stage, notification_id)

    return wrapper  # type: ignore[return-value]


def install() -> None:
    for name, stage in (
        ("parked_among", "parked"),
        ("write_changes", "write"),
        ("record_applied", "write"),
        ("record_parked", "write"),
    ):
        setattr(projector_module, name, timed(stage, getattr(projector_module, name)))
    for name, stage in (
        ("claim_position", "claim"),  # with the dead-letter probe
        ("advance_position", "advance"),  # with the batch's writes
    ):
        setattr(projector_module, name, timed_until_read(stage, getattr(projector_module, name)))
    projector_module.Projector._slice = timed(  # type: ignore[method-assign]
        "fetch_decode", projector_module.Projector._slice
    )
    projector_module.Projector._take_fence = timed(  # type: ignore[method-assign]
        "fence", projector_module.Projector._take_fence
    )
    projector_module.Projector._hook = traced_hook(  # type: ignore[method-assign]
        projector_module.Projector._hook
    )
    source_module.running_transactions = timed("watch", source_module.running_transactions)
    source_module.read_log = timed("read_log", source_module.read_log)
    projector_module.Projector._run_batch = traced_batch(  # type: ignore[method-assign]
        projector_module.Projector._run_batch
    )
    runner_module.Runner._wait = traced_wait(runner_module.Runner._wait)  # type: ignore[method-assign]


def profiled(function: F, path: str) -> F:
    """``function`` under cProfile (in the thread that calls it: the loop's)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        profiler = cProfile.Profile()
        try:
            return profiler.runcall(function, *args, **kwargs)
        finally:
            profiler.dump_stats(path)

    return wrapper  # type: ignore[return-value]


def dump(path: str) -> None:
    with open(path, "w") as out:
        json.dump({"batches": batches, "waits": waits}, out)


if __name__ == "__main__":
    install()
    atexit.register(dump, os.environ["LAG_TRACE_FILE"])
    if os.environ.get("LAG_PROFILE"):  # where the loop's CPU goes: cProfile, stats file
        runner_module.Runner.run = profiled(  # type: ignore[method-assign]
            runner_module.Runner.run, os.environ["LAG_PROFILE"]
        )
    sys.exit(cli.main())


# --- reading a trace back (in the bench's process) ---------------------------------------


def ordering_floor(records: list[tuple[int, float, float]]) -> dict[int, float]:
    """Per notification id, when every id up to it had committed (writers' stamps).

    The position can reach an id only once all ids below it are in: however fast the
    projector, an event waits for the slowest earlier-drawn commit. ``ready - commit``
    is the lag a projector of zero cost would show.
    """
    ready: dict[int, float] = {}
    latest = 0.0
    for notification_id, committed, _ in sorted(records):
        latest = max(latest, committed)
        ready[notification_id] = latest
    return ready


def explain(
    records: list[tuple[int, float, float]],
    seen: Callable[[int], float | None],
    trace: dict[str, Any],
    tail_ms: float,
) -> dict[str, Any]:
    """Where each event's lag went, averaged over all events and over the tail (lag ≥
    ``tail_ms``), in ms: waiting for earlier ids (``order``), for the loop to start a
    batch that takes it (``queue``: notification, a batch already running, retries),
    the batch's read (claim, fetch, decode), its write (rows, position), its commit,
    and the observer's poll (``observe``)."""
    import bisect

    applied = [b for b in trace["batches"] if b["size"]]
    ends = [b["position"] for b in applied]
    ready = ordering_floor(records)
    parts: dict[str, list[float]] = {
        k: [] for k in ("lag", "order", "queue", "read", "write", "commit", "observe")
    }
    for notification_id, committed, _ in records:
        index = bisect.bisect_left(ends, notification_id)
        visible = seen(notification_id)
        if index == len(applied) or visible is None:
            continue
        batch = applied[index]
        available = ready[notification_id]
        began = max(batch["began"], available)
        before_write = max(batch.get("at_before_write", began), began)
        before_commit = max(batch.get("at_before_commit", before_write), before_write)
        after_commit = max(batch.get("at_after_commit", batch["ended"]), before_commit)
        parts["lag"].append(visible - committed)
        parts["order"].append(available - committed)
        parts["queue"].append(began - available)
        parts["read"].append(before_write - began)
        parts["write"].append(before_commit - before_write)
        parts["commit"].append(after_commit - before_commit)
        parts["observe"].append(max(0.0, visible - after_commit))

    def mean_ms(values: list[float]) -> float:
        return round(1000 * sum(values) / len(values), 2) if values else 0.0

    tail = [i for i, lag in enumerate(parts["lag"]) if lag * 1000 >= tail_ms]
    waits = trace["waits"]
    batches = trace["batches"]
    return {
        "mean_ms": {k: mean_ms(v) for k, v in parts.items()},
        "tail_mean_ms": {k: mean_ms([v[i] for i in tail]) for k, v in parts.items()},
        "tail_events": len(tail),
        "order_p99_ms": round(
            1000 * sorted(parts["order"])[int(0.99 * (len(parts["order"]) - 1))], 1
        )
        if parts["order"]
        else 0.0,
        "batches": len(batches),
        "batches_applying": len(applied),
        "batches_blocked": sum(1 for b in batches if b["blocked"]),
        "events_per_applying_batch": round(
            sum(b["size"] for b in applied) / max(1, len(applied)), 2
        ),
        "batch_ms_mean": mean_ms([b["ended"] - b["began"] for b in batches]),
        "fences": sum(int(b.get("fence_calls", 0)) for b in batches),
        "watches": sum(int(b.get("watch_calls", 0)) for b in batches),
        "waits_woken_by_notification": sum(1 for w in waits if w[2]),
        "waits_timed_out": sum(1 for w in waits if not w[2]),
        "wait_ms_mean": mean_ms([w[1] - w[0] for w in waits]),
    }
