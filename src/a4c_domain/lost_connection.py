"""A command whose connection to the event store is lost is decided again, for a while.

A PostgreSQL failover, a restarted server or a cut network drops connections, sometimes
at COMMIT: the client cannot tell whether its events were stored. Running the whole
command again (load, decide, save) settles it either way, because every command is safe
to decide again: aggregate ids are deterministic, so stored events show up on reload and
the command decides "already applied" (a no-op, or the same result); events that were
not stored are saved now; and a save racing the lost one meets the store's uniqueness on
(aggregate, version), which the save loop answers by deciding again
(``ApplicationBase._execute``). So nothing is stored twice, nothing acknowledged is
dropped. A command found applied this way returns like a repeat of it: ``position`` is
None.

eventsourcing already retries each store call (10 times, 0.2 s apart) on a lost
connection; this is the outer loop for a switch that takes longer (pg_auto_failover:
a few seconds with tuned detection), bounded in attempts and seconds, then the typed,
retryable ``StoreUnavailable``. A worker's activity retry on top runs the same command
again: the same reasoning holds there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import InterfaceError, OperationalError

from a4c_domain.errors import StoreUnavailable

R = TypeVar("R")
# Long enough for a failover with tuned detection (a few seconds; docs/operating.md),
# short enough that a caller (an HTTP request, an activity) is answered while it waits.
STORE_RETRY_SECONDS = 15.0
STORE_RETRY_ATTEMPTS = 8
FIRST_WAIT = 0.25  # then doubled, at most MAX_WAIT
MAX_WAIT = 2.0
# eventsourcing's word for a connection lost or not made (psycopg's OperationalError,
# InterfaceError; the pool's timeout waiting for one).
LOST = (OperationalError, InterfaceError)


def run_again_when_lost(
    what: str,
    call: Callable[[], R],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> R:
    """``call()``; after a lost connection, again (waiting a little longer each time),
    until it answers or the bound is reached: then ``StoreUnavailable`` naming ``what``."""
    started = clock()
    wait = FIRST_WAIT
    for attempt in range(1, STORE_RETRY_ATTEMPTS + 1):
        try:
            return call()
        except LOST as exc:
            waited = clock() - started
            if attempt == STORE_RETRY_ATTEMPTS or waited + wait > STORE_RETRY_SECONDS:
                # The driver's text names hosts, not secrets; the cause keeps it for logs.
                raise StoreUnavailable(
                    f"{what}: the event store did not answer for {waited:.0f} s "
                    f"({attempt} attempts); the command may be retried"
                ) from exc
        sleep(wait)
        wait = min(wait * 2, MAX_WAIT)
    raise AssertionError("unreachable")  # pragma: no cover
