"""Failure injection shared by the in-memory providers.

Workflow tests need a provider that fails at a chosen step (and only there) to drive
the saga's compensation paths; this keeps that seam in one place.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class FaultInjector:
    """Raises queued or key-specific exceptions before an in-memory operation runs."""

    def __init__(self, normalize: Callable[[str], str] = str.lower) -> None:
        """``normalize`` maps keys to one spelling (e.g. DNS names with a trailing dot)."""
        self._normalize = normalize
        self._next: deque[BaseException] = deque()
        self._by_key: dict[str, tuple[BaseException, int | None]] = {}

    def fail_next(self, exc: BaseException, *, times: int = 1) -> None:
        """Make the next ``times`` calls (any key) raise ``exc``."""
        self._next.extend([exc] * times)

    def fail_for(self, key: str, exc: BaseException, *, times: int | None = None) -> None:
        """Make calls for ``key`` (an fqdn or a recipient) raise ``exc``.

        ``times=None`` keeps failing until :meth:`clear_failures`.
        """
        self._by_key[self._normalize(key)] = (exc, times)

    def clear_failures(self) -> None:
        self._next.clear()
        self._by_key.clear()

    def raise_injected(self, key: str) -> None:
        """Raise the pending failure for this call, if any."""
        if self._next:
            raise self._next.popleft()
        key = self._normalize(key)
        entry = self._by_key.get(key)
        if entry is None:
            return
        exc, times = entry
        if times is not None:
            if times <= 1:
                del self._by_key[key]
            else:
                self._by_key[key] = (exc, times - 1)
        raise exc
