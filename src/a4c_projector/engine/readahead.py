"""Reading the next slice while the current batch is written (PostgreSQL catch-up).

A catch-up batch is two halves of about equal cost: fetching, decoding and handling
rows (Python), and writing them (mostly the server: ``COPY``, set-based upserts,
commit). While a full batch is being written, a :class:`ReadAhead` thread fetches and
decodes the slice after it on its own connection, so the two halves overlap (psycopg
releases the GIL while it waits for the server).

It changes nothing that is decided: the slice is read with the same guarded fetch
(one statement, one snapshot) from the position the current batch is about to commit,
and the next batch uses it only when it starts from exactly that position with the same
limit and stop, and the slice is full (a short slice may be stale by then: the batch
reads afresh). Decoding and handling errors are kept per row and met again, in order,
by the batch loop, which alone decides poison, parking, hooks and position. Anything
that goes wrong in the thread itself just means the batch reads for itself.

Only one fetch runs at a time: the batch joins the thread before touching the source
(whose gap memory the thread updates) again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from a4c_projector.eventlog.source import Notification
from a4c_projector.readmodel.handlers import RowChange

# A row's change (None: the event changes no row), or why it could not be decoded/handled.
Outcome = RowChange | Exception | None


@dataclass(frozen=True)
class Slice:
    """Guarded rows after ``start`` and what handling each of them gave."""

    start: int
    limit: int
    stop: int | None
    rows: list[Notification]
    outcomes: list[Outcome]
    blocked: bool

    @property
    def full(self) -> bool:
        return len(self.rows) == self.limit


SliceReader = Callable[[int, int, int | None], Slice]


class ReadAhead:
    """At most one background read; ``take`` hands it over if it fits the next batch."""

    def __init__(self, read: SliceReader) -> None:
        self._read = read
        self._thread: threading.Thread | None = None
        self._result: Slice | None = None
        self.failed: BaseException | None = None  # the last error in the thread

    def start(self, start: int, limit: int, stop: int | None) -> None:
        self.cancel()
        self._thread = threading.Thread(
            target=self._run, args=(start, limit, stop), name="a4c-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, start: int, limit: int, stop: int | None) -> None:
        try:
            self._result = self._read(start, limit, stop)
        except BaseException as exc:  # reported through ``failed``; the batch reads itself
            self.failed = exc

    def take(self, start: int, limit: int, stop: int | None) -> Slice | None:
        """The slice read for a batch starting at ``start``, or None (read afresh)."""
        self.join()
        result, self._result = self._result, None
        if result is None or not result.full:
            return None
        if (result.start, result.limit, result.stop) != (start, limit, stop):
            return None
        return result

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def cancel(self) -> None:
        self.join()
        self._result = None
