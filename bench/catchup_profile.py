"""Where a catch-up's time goes: phase timers around the projector's steps, and cProfile.

Used by ``bench/projector_catchup.py --phases`` / ``--profile`` in the child process
that runs the catch-up (the patches never leave it). The read-ahead thread is switched
off there, so every phase runs on the timed thread, one after another: the figures add
up to the batch's whole work (with read-ahead, fetch and decode overlap the writes).

A phase's time is *exclusive*: time spent in a phase nested inside it (the SQL a
writer function runs, say) is counted to the nested phase only, so the phases add up
to the wall time. ``sql <verb> <table>`` phases are every statement the projector's
connection ran, named by its verb and first table; ``copy <table>`` the rows streamed
with ``COPY`` (formatting them included).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.engine import projector as batch_module
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.decoding import EventDecoder
from a4c_projector.eventlog.source import NotificationSource
from a4c_projector.readmodel import public_events, writer
from a4c_projector.readmodel.handlers import RowHandlers

_FIRST_TABLE = re.compile(r'(?:INTO|UPDATE|FROM|TABLE)\s+"?([A-Za-z0-9_.]+)"?(?:\s|$)')


def statement_phase(statement: Any) -> str:
    """``sql <verb> <table>`` for a statement (str or bytes)."""
    text = statement.decode() if isinstance(statement, bytes) else str(statement)
    verb = text.split(None, 1)[0].upper() if text.strip() else "?"
    found = _FIRST_TABLE.search(text)
    return f"sql {verb} {found.group(1) if found else '?'}"


class Phases:
    """Exclusive seconds per phase (one thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._nested: list[float] = []  # per open phase: time of phases inside it

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._nested.append(0.0)
        began = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - began
            inner = self._nested.pop()
            self.seconds[name] += elapsed - inner
            self.calls[name] += 1
            if self._nested:
                self._nested[-1] += elapsed

    def wrap(self, owner: Any, attribute: str, name: str | Callable[..., str]) -> None:
        """Time every call of ``owner.attribute`` as phase ``name`` (or ``name(*args)``)."""
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name if isinstance(name, str) else name(*args)):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)

    def install(self, projector: Projector) -> None:
        """Patch the projector's steps in this process; read-ahead off (see the module)."""
        projector._read_ahead_from = lambda *args: None  # type: ignore[method-assign]
        self.wrap(NotificationSource, "fetch", "fetch (read + guard)")
        self.wrap(EventDecoder, "decode", "decode + upcast")
        self.wrap(RowHandlers, "changes", "handlers")
        for name in ("claim_position", "parked_among", "record_applied", "advance_position"):
            self.wrap(batch_module, name, name)
        self.wrap(batch_module, "record_parked", "record_parked")
        self.wrap(writer, "group_changes", "fold + group (python)")
        self.wrap(writer, "copy_rows", lambda conn, stage, *rest: f"copy {stage}")
        self.wrap(writer, "write_members", "members (derivation)")
        self.wrap(writer, "write_tokens", "tokens (rows + write)")
        self.wrap(writer, "write_public_events", "public events (COPY)")
        self.wrap(public_events, "public_event_rows", "public events (bodies, python)")
        self.wrap(
            PostgresDatabase, "execute", lambda db, statement, *rest: statement_phase(statement)
        )
        self.wrap(
            PostgresDatabase, "executemany", lambda db, statement, *rest: statement_phase(statement)
        )
        commit: list[float] = []

        def fault(stage: str, notification_id: int) -> None:
            if stage == "before_commit":
                commit.append(time.perf_counter())
            elif stage == "after_commit":
                self.seconds["commit"] += time.perf_counter() - commit.pop()
                self.calls["commit"] += 1

        projector.fault = fault

    def report(self, total: float) -> dict[str, Any]:
        """Seconds and share of ``total`` per phase, largest first; the rest unnamed."""
        named = sum(self.seconds.values())
        shares = {
            name: {"s": round(s, 3), "share": round(s / total, 3), "calls": self.calls[name]}
            for name, s in sorted(self.seconds.items(), key=lambda item: -item[1])
        }
        shares["(rest: batch loop, transaction)"] = {
            "s": round(total - named, 3),
            "share": round((total - named) / total, 3),
            "calls": 0,
        }
        return shares


@contextmanager
def profiled(lines: int = 35) -> Iterator[io.StringIO]:
    """cProfile of the block; its top ``lines`` by own time written to the yielded buffer."""
    profile = cProfile.Profile()
    out = io.StringIO()
    profile.enable()
    try:
        yield out
    finally:
        profile.disable()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(lines)
