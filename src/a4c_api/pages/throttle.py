"""Accept attempts, rate limited per invitation and per client address, before anything
reaches Temporal: a moving window per API process; a client is its address (an IPv6
client: its /64), as uvicorn sets it from ``X-Forwarded-For`` only for trusted proxies.
Why: docs/design/pages.md.
"""

from __future__ import annotations

import ipaddress
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
# The IPv6 prefix one client holds (RFC 6177: an end site gets a /64 or more).
IPV6_CLIENT_PREFIX = 64


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
    """Whom an attempt is counted against: the client's IPv4 address, or its IPv6 /64
    (``2001:db8::/64``): a subscriber is given a /64 at least and picks addresses in it
    freely, so counting each address would give one client 2^64 budgets."""
    if request.client is None:
        return "unknown"
    host = request.client.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP address (a Unix socket's peer): counted as it is named
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)
