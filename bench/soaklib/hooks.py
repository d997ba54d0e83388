"""The soak's webhook receivers: real HTTP servers that verify every signature, fail now
and then on purpose, and record everything for the checker.

Two endpoints are created through ``/v1`` as the operator, each with a receiver of its
own (``tests.webhooks.receiver``, which verifies with the ``standardwebhooks`` package):
one for every public event of every organization, one for a few types only. A seeded
rule makes a receiver answer 500, 503 with ``Retry-After``, or hang past the daemon's
timeout for a share of the requests, so retries happen all along; the ``receiver_down``
fault takes one away for a while (connections refused). After the load,
:meth:`Hooks.settle` waits until the daemon has delivered everything the feed holds.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from tests.webhooks.receiver import Answer, Receiver

from soaklib.check_webhooks import Arrival
from soaklib.load_http import Http, backoff

# Shares of requests a receiver answers badly (the rest: 200 at once).
FAILURE_SHARE = 0.05  # 500
BUSY_SHARE = 0.02  # 503 with Retry-After: 1
HANG_SHARE = 0.01  # no answer for longer than the daemon waits (WEBHOOK_TIMEOUT)
HANG_SECONDS = 4.0
# The daemon's timeout and retry schedule in the soak: short, so retries come during the
# run and the settle, not hours later (production's schedule spans days).
DAEMON_TIMEOUT_SECONDS = 2
RETRY_SCHEDULE = "0,0.5s,1s,2s,3s,5s,5s,10s,10s,20s"
PEOPLE_TYPES = ["invitation.accepted", "invitation.revoked", "organization.activated"]


@dataclass
class Hook:
    name: str
    event_types: list[str] | None  # None: every type
    receiver: Receiver


class Hooks:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lock = threading.Lock()  # the receivers answer on threads of their own
        self.hooks = [
            Hook("soak-all", None, Receiver([])),
            Hook("soak-people", PEOPLE_TYPES, Receiver([])),
        ]
        for hook in self.hooks:
            hook.receiver.rule = self._rule()

    def _rule(self) -> Callable[[dict[str, Any]], Answer | None]:
        def answer(_event: dict[str, Any]) -> Answer | None:
            with self._lock:
                draw = self._rng.random()
            if draw < FAILURE_SHARE:
                return Answer(status=500)
            if draw < FAILURE_SHARE + BUSY_SHARE:
                return Answer(status=503, retry_after="1")
            if draw < FAILURE_SHARE + BUSY_SHARE + HANG_SHARE:
                return Answer(hang=HANG_SECONDS)
            return None

        return answer

    @property
    def secrets(self) -> dict[str, str]:
        """The endpoints' signing secrets: they must appear nowhere but the receivers."""
        return {
            f"webhook secret of {hook.name}": secret
            for hook in self.hooks
            for secret in hook.receiver.secrets
        }

    async def create(self, http: Http) -> None:
        """Each endpoint through ``POST /v1/webhook-endpoints`` (retried through faults:
        the same create again answers 200 without the secret, so only the first answer
        that carries one counts — there is always one: the 201)."""
        for hook in self.hooks:
            body: dict[str, Any] = {"name": hook.name, "url": hook.receiver.url}
            if hook.event_types is not None:
                body["event_types"] = hook.event_types
            attempt = 0
            while True:
                reply = await http.v1(
                    "webhook_endpoint", "POST", "/v1/webhook-endpoints", json_body=body,
                    attempt=attempt,
                )  # fmt: skip
                found = reply.body() if reply.ok else None
                if isinstance(found, dict) and found.get("secret"):
                    hook.receiver.secrets = [str(found["secret"])]
                    break
                if reply.ok or reply.wait is None:
                    raise RuntimeError(f"creating webhook endpoint {hook.name}: {reply.outcome}")
                await asyncio.sleep(reply.wait or backoff(attempt))
                attempt += 1

    def receiver_down(self, rng: random.Random) -> Hook:
        hook = rng.choice(self.hooks)
        hook.receiver.down()
        return hook

    def arrivals(self) -> dict[str, list[Arrival]]:
        """Every request each endpoint's receiver got, in arrival order."""
        return {
            hook.name: [
                Arrival(r.webhook_id, r.body, any(r.verified), r.ok)
                for r in hook.receiver.snapshot()
            ]
            for hook in self.hooks
        }

    def close(self) -> None:
        for hook in self.hooks:
            hook.receiver.close()


def undelivered(conn: psycopg.Connection[Any]) -> int:
    """Public events not yet fanned out, plus deliveries not yet made (parked included)."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(position), 0) FROM public_events) "
        "- (SELECT coalesce(max(position), 0) FROM webhook_fanout), "
        "(SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered')"
    ).fetchone()
    assert row is not None
    return max(0, int(row[0])) + int(row[1])


def settle(connect: Callable[[], psycopg.Connection[Any]], timeout: float) -> bool:
    """Wait until everything the feed holds is delivered; False when ``timeout`` ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect() as conn:
                if undelivered(conn) == 0:
                    return True
        except psycopg.Error:
            pass  # the settle outlasts a connection lost to the last fault
        time.sleep(0.5)
    return False
