"""Limit on wrong tokens per invitation, counted by the worker process in memory.

InvitationWorkflow's ``accept`` validator refuses a wrong proof (``InvalidToken``), so a
wrong attempt never reaches workflow history. A validator cannot change workflow state
(and anything it did change would have to be written to history to survive a replay),
so the count lives here instead: a worker interceptor wraps the validator, counts its
``InvalidToken`` refusals per workflow id (one invitation, across continue-as-new), and
past :attr:`AttemptLimit.max_wrong` within :attr:`AttemptLimit.window_seconds` answers
``TooManyAttempts`` instead, until the window that began with the first wrong attempt
has passed.

Only wrong proofs are refused: a right proof is accepted even while the invitation is
throttled. Blocking it too would let anyone who knows an invitation id lock its invitee
out for good with ``max_wrong`` requests per window — and a proof is 256 bits, so
guessing is hopeless either way. The limit exists to slow down and expose abuse
(``a4c_worker_accept_proofs_refused_total``), not to protect the secret.

Limits of counting in memory (accepted, documented): each worker process counts on its
own, and a restart forgets. Temporal routes an execution's tasks to the worker that
has it cached, so in practice one worker sees an invitation's attempts; with ``n``
workers the worst case is ``n * max_wrong`` per window. At most :data:`MAX_TRACKED`
invitations are tracked; beyond that the longest-untouched one is forgotten first.
Validators do not run while a history is replayed, so none of this affects
determinism. (A fixed-window counter with a bounded map is all this needs; a rate
limiting library would bring storage back ends and a clock of its own.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from a4c_domain.errors import InvalidToken, TooManyAttempts
from a4c_worker.workflows.models import INVITATION_WORKFLOW_PREFIX

GUARDED_UPDATE = "accept"
MAX_TRACKED = 100_000


# The bounds and production defaults, also used by the worker's settings.
MaxWrong = Annotated[int, Field(ge=1, le=10_000)]
WindowSeconds = Annotated[float, Field(gt=0, le=86_400)]
DEFAULT_MAX_WRONG = 10
DEFAULT_WINDOW_SECONDS = 900.0


class AttemptLimit(BaseModel):
    """Wrong tokens allowed per invitation per window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_wrong: MaxWrong = DEFAULT_MAX_WRONG
    window_seconds: WindowSeconds = DEFAULT_WINDOW_SECONDS


@dataclass
class _Window:
    began: float
    wrong: int = 0


class WrongAttempts:
    """Fixed-window counts of wrong attempts per key (here: invitation workflow id)."""

    def __init__(
        self,
        limit: AttemptLimit,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._max_tracked = max_tracked
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None if it is not throttled."""
        window = self._current(key)
        if window is None or window.wrong <= self.limit.max_wrong:
            return None
        return window.began + self.limit.window_seconds - self._clock()

    def record_wrong(self, key: str) -> None:
        window = self._current(key) or _Window(began=self._clock())
        window.wrong += 1
        self._windows[key] = window
        self._windows.move_to_end(key)
        while len(self._windows) > self._max_tracked:
            self._windows.popitem(last=False)

    def _current(self, key: str) -> _Window | None:
        window = self._windows.get(key)
        if window is not None and self._clock() - window.began >= self.limit.window_seconds:
            del self._windows[key]
            return None
        return window


class AcceptGuard(Interceptor):
    """Worker interceptor: counts wrong accepts, throttles them, reports each refusal.

    ``refused`` is called with the refusal type (``InvalidToken`` or
    ``TooManyAttempts``); the worker wires it to its Prometheus counter.
    """

    def __init__(
        self,
        limit: AttemptLimit | None = None,
        refused: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = WrongAttempts(limit or AttemptLimit(), clock)
        self.refused = refused or (lambda kind: None)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        guard = self

        class _Guarded(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                if input.update != GUARDED_UPDATE:
                    return super().handle_update_validator(input)
                key = workflow.info().workflow_id
                try:
                    return super().handle_update_validator(input)
                except ApplicationError as exc:
                    if exc.type != InvalidToken.__name__:
                        raise
                    guard.attempts.record_wrong(key)
                    wait = guard.attempts.retry_after(key)
                    if wait is None:
                        guard.refused(InvalidToken.__name__)
                        raise
                guard.refused(TooManyAttempts.__name__)
                throttled = TooManyAttempts(key.removeprefix(INVITATION_WORKFLOW_PREFIX), wait)
                raise ApplicationError(
                    str(throttled), wait, type=TooManyAttempts.__name__, non_retryable=True
                )

        return _Guarded
