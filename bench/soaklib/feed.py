"""A consumer of ``GET /v1/events`` among the soak's load: it follows the cursor from the
first event to the end, through every fault, as another service would.

It keeps each page's events in the order received (a retried page may repeat some: a
real consumer deduplicates by id, the checker counts repeats and proves that, with them
removed, every public event the store holds arrived once and in store order). It asks
the APIs in turn through :class:`~soaklib.load_http.Http`, so its answers are counted
and judged like the rest of the load (a 503 with ``Retry-After`` during a fault is
expected; anything else unexpected is a ledger violation).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from soaklib.load_http import Http, backoff

PAGE = 100  # the API's largest page
IDLE_PAUSE = 0.25  # seconds between polls once the consumer has read everything there is


@dataclass
class FeedConsumer:
    http: Http
    received: list[dict[str, Any]] = field(default_factory=list)  # the events, as answered
    cursor: str | None = None
    pages: int = 0

    async def _page(self) -> bool | None:
        """One page: whether more is there now; None when no page came (try again)."""
        query = f"?limit={PAGE}" + (f"&after={self.cursor}" if self.cursor else "")
        attempt = 0
        while True:
            reply = await self.http.v1("events", "GET", f"/v1/events{query}", attempt=attempt)
            if reply.ok:
                break
            if reply.wait is None:
                return None
            await asyncio.sleep(reply.wait or backoff(attempt))
            attempt += 1
        body = reply.body()
        if not isinstance(body, dict):
            return None
        self.received.extend(body["data"])
        self.cursor = str(body["next"])
        self.pages += 1
        return bool(body["has_more"])

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the feed until ``stop`` is set."""
        while not stop.is_set():
            more = await self._page()
            if not more:
                await _pause(stop, IDLE_PAUSE)

    async def drain(self, quiet: float = 2.0, timeout: float = 60.0) -> bool:  # noqa: ASYNC109
        """After the load: read until nothing new came for ``quiet`` seconds (the
        projection has caught up by then); False when ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            before = len(self.received)
            more = await self._page()
            if len(self.received) > before:
                last_new = time.monotonic()
            elif not more and time.monotonic() - last_new >= quiet:
                return True
            if not more:
                await asyncio.sleep(IDLE_PAUSE)
        return False


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
