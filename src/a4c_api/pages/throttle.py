"""Accept attempts, rate limited per invitation and per client address.

On top of the workflow's own limit on wrong tokens: these limits also count right
tokens, wrong people and CSRF-valid retries, and they answer before anything reaches
Temporal. A moving window (``limits``' in-memory storage) per API process: each replica
counts its own, which bounds a client to ``replicas x rate`` (the workflow's limit is
the global one). The client address is ``request.client.host``, which uvicorn sets from
``X-Forwarded-For`` only for the proxies ``API_FORWARDED_ALLOW_IPS`` trusts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from uuid import UUID

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from a4c_api.settings import ApiSettings

NAMESPACE = "a4c-accept"


@dataclass(frozen=True)
class Throttled:
    """Refused; try again in ``retry_after`` whole seconds (at least 1)."""

    retry_after: int


class AcceptThrottle:
    def __init__(self, per_invitation: str, per_client: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_invitation: RateLimitItem = parse(per_invitation)
        self._per_client: RateLimitItem = parse(per_client)

    async def _hit(self, item: RateLimitItem, key: str) -> Throttled | None:
        if await self._limiter.hit(item, NAMESPACE, key):
            return None
        stats = await self._limiter.get_window_stats(item, NAMESPACE, key)
        return Throttled(retry_after=max(1, math.ceil(stats.reset_time - time.time())))

    async def client(self, address: str) -> Throttled | None:
        """Count an attempt from ``address``; refused once it made too many lately."""
        return await self._hit(self._per_client, "client:" + address)

    async def invitation(self, invitation_id: UUID) -> Throttled | None:
        """Count an attempt on ``invitation_id``; refused once it had too many lately."""
        return await self._hit(self._per_invitation, f"invitation:{invitation_id}")


def throttle_of(request: Request, settings: ApiSettings) -> AcceptThrottle:
    """The app's throttle, made on first use (its storage belongs to the running loop)."""
    found = getattr(request.app.state, "accept_throttle", None)
    if found is None:
        found = AcceptThrottle(
            settings.api_accept_rate_per_invitation, settings.api_accept_rate_per_client
        )
        request.app.state.accept_throttle = found
    assert isinstance(found, AcceptThrottle)
    return found


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"
