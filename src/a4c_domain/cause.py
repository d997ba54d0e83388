"""Who or what caused an event: set once at the edge, recorded on every event.

An edge (a Temporal activity, an HTTP handler, a CLI command) wraps its work in
``with caused_by(Cause(...)):``; the aggregates copy ``current_cause()`` into the
``metadata`` of each event they record, so no command signature carries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field


class Cause(BaseModel):
    """The origin of a command. Either Temporal activity coordinates or a correlation id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    correlation_id: str = Field(default_factory=lambda: str(uuid4()), max_length=200)
    actor: str | None = Field(default=None, max_length=200)
    workflow_id: str | None = Field(default=None, max_length=1000)
    run_id: str | None = Field(default=None, max_length=200)
    activity_type: str | None = Field(default=None, max_length=200)
    attempt: int | None = Field(default=None, ge=1)
    # OpenTelemetry trace the command ran in, when tracing is on: event → trace.
    trace_id: str | None = Field(default=None, max_length=32)
    span_id: str | None = Field(default=None, max_length=16)

    def as_metadata(self) -> dict[str, str]:
        """Flat string mapping stored on each event (absent fields left out)."""
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}


_current: ContextVar[Cause | None] = ContextVar("a4c_cause", default=None)


def current_cause() -> Cause:
    """The cause set by the innermost ``caused_by``; a fresh correlation id otherwise."""
    cause = _current.get()
    return cause if cause is not None else Cause()


@contextmanager
def caused_by(cause: Cause) -> Iterator[Cause]:
    """Record ``cause`` on every event recorded inside this block."""
    token = _current.set(cause)
    try:
        yield cause
    finally:
        _current.reset(token)
