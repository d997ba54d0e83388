"""A compensation stack for workflows: register the undo before the step, run in reverse.

Registering first matters because a step can act and still fail (the DNS record was
published, then recording it timed out): its undo must run anyway. Undo actions are
idempotent activities, so undoing something that never happened is "nothing to do".
Compensation is best-effort: each failure is recorded and the next undo still runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from temporalio.exceptions import ActivityError, ApplicationError

from a4c_worker.contracts import CompensationOutcome
from a4c_worker.workflows.models import CompensationRecord


@dataclass(frozen=True)
class Failure:
    """Why the saga is unwinding: handed to every undo (deactivation records it)."""

    step: str
    reason: str


Undo = Callable[[Failure], Awaitable[CompensationOutcome]]


@dataclass(frozen=True)
class Compensation:
    name: str
    for_step: str
    undo: Undo


class Saga:
    def __init__(self) -> None:
        self._stack: list[Compensation] = []

    def add(self, name: str, for_step: str, undo: Undo) -> None:
        self._stack.append(Compensation(name, for_step, undo))

    def discard(self, for_step: str) -> None:
        """Forget the undo of a step that provably did not act (refused before acting)."""
        self._stack = [c for c in self._stack if c.for_step != for_step]

    @property
    def pending(self) -> list[str]:
        return [c.name for c in self._stack]

    async def compensate(
        self, failure: Failure, on_record: Callable[[CompensationRecord], None]
    ) -> list[CompensationRecord]:
        """Run every undo, newest first; record each outcome, never stop early."""
        records: list[CompensationRecord] = []
        while self._stack:
            compensation = self._stack.pop()
            try:
                outcome = await compensation.undo(failure)
                record = CompensationRecord(
                    step=compensation.name, outcome=outcome.outcome, detail=outcome.detail
                )
            except (ActivityError, ApplicationError) as exc:
                record = CompensationRecord(
                    step=compensation.name, outcome="failed", detail=describe(exc)
                )
            records.append(record)
            on_record(record)
        return records


def describe(exc: BaseException) -> str:
    """``Type: message`` of the innermost application failure (what really went wrong)."""
    cause: BaseException = exc
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    kind = (
        cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
    )
    return f"{kind}: {cause.message if isinstance(cause, ApplicationError) else cause}"[:500]


def application_cause(exc: BaseException) -> ApplicationError | None:
    """The ``ApplicationError`` behind an activity failure (the refusal), if there is one."""
    cause: BaseException | None = exc
    while isinstance(cause, ActivityError):
        cause = cause.cause
    return cause if isinstance(cause, ApplicationError) else None


def failure_type(exc: BaseException) -> str | None:
    """The ``ApplicationError.type`` behind an activity failure, if there is one."""
    cause = application_cause(exc)
    return cause.type if cause is not None else None
